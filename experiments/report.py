"""Turn a finished run or sweep directory into a self-contained report.

    python -m experiments.report --workdir runs/eos            # runs/eos/report.html
    python -m experiments.report --workdir runs/eos --format=md
"""
import argparse
import sys

from jaxlab.report import write_report

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Turn a finished run or sweep directory into a self-contained report"
CPU_TIME = "seconds"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.report", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="A finished run or sweep directory.")
    p.add_argument("--format", choices=("html", "md"), default="html", help="Report format.")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        path = write_report(args.workdir, args.format)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
