"""WSM: warmup–stable lr + checkpoint merging vs WSD and cosine decay. Config: experiments/configs/wsm.py."""
from jaxlab import cli
from jaxlab.checkpoint.study import check_study, wsm_study

CONFIG = cli.define_flags(__file__)


def main(config, workdir):
    wsm_study(config, workdir)


if __name__ == "__main__":
    cli.run_main(main, CONFIG, "wsm", check=check_study)
