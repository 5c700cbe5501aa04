"""Edge of stability and weight decay (full-batch GD). Config: experiments/configs/eos_weight_decay.py."""
from jaxlab import cli
from jaxlab.curvature.eos import write_eos_outputs
from jaxlab.experiment import run_grid

CONFIG = cli.define_flags(__file__)


def main(config, workdir):
    results = run_grid(config, workdir)
    write_eos_outputs(results, config, workdir)


if __name__ == "__main__":
    cli.run_main(main, CONFIG, "eos_weight_decay")
