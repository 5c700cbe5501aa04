"""Weight-decay variants × λ × lr, vmapped over seeds. Config: experiments/configs/weight_decay_variants.py."""
from jaxlab import cli
from jaxlab.optim.studies import check_weight_decay_study, weight_decay_study

CONFIG = cli.define_flags(__file__)


def main(config, workdir):
    weight_decay_study(config, workdir)


if __name__ == "__main__":
    cli.run_main(main, CONFIG, "weight_decay_variants", check=check_weight_decay_study)
