"""Learning-rate schedules side by side at equal budget, plus a refined schedule. Config: configs/schedules.py."""
from jaxlab import cli
from jaxlab.optim.studies import check_schedule_study, schedule_study

CONFIG = cli.define_flags(__file__)


def main(config, workdir):
    schedule_study(config, workdir)


if __name__ == "__main__":
    cli.run_main(main, CONFIG, "schedules", check=check_schedule_study)
