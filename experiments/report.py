"""Turn a finished run or sweep directory into a self-contained report.

    python -m experiments.report --workdir runs/eos            # runs/eos/report.html
    python -m experiments.report --workdir runs/eos --format=md

CPU time: seconds
"""
import sys

from absl import app, flags

from jaxlab.report import write_report

WORKDIR = flags.DEFINE_string("workdir", None, "A finished run or sweep directory.", required=True)
FORMAT = flags.DEFINE_enum("format", "html", ["html", "md"], "Report format.")


def main(argv):
    del argv
    try:
        path = write_report(WORKDIR.value, FORMAT.value)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"report written to {path}")


if __name__ == "__main__":
    app.run(main)
