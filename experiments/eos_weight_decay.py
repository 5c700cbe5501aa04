"""Edge of stability and weight decay (full-batch GD). Config: experiments/configs/eos_weight_decay.py."""
from jaxlab import cli
from jaxlab.experiment import run_grid, write_grid_outputs

CONFIG = cli.define_flags(__file__)


def main(config, workdir):
    results = run_grid(config, workdir)
    write_grid_outputs(results, workdir)


if __name__ == "__main__":
    cli.run_main(main, CONFIG, "eos_weight_decay")
