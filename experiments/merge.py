"""Merge a run's checkpoints and evaluate the result (uniform, EMA or a WSM decay shape).

    python -m experiments.merge --workdir runs/wsm --scheme cosine --window 8
    python -m experiments.merge --workdir runs/wsm --scheme ema --decay 0.8 --window 16 --interval 40

Writes the merged parameters to DIR/merged/<scheme>-w<window>-i<interval>/<set> (an orbax checkpoint) and their
train/test loss and accuracy, with the last checkpoint's for comparison, into DIR/summary.json under "merge".
"""
import argparse
import os
import sys

from jaxlab.checkpoint import SCHEMES, CheckpointError, MergeError, merge_workdir
from jaxlab.checkpoint.merge import check_request
from jaxlab.evaluate import Evaluator
from jaxlab.io import read_json

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Merge a run's checkpoints and evaluate the result (uniform, EMA or a WSM decay shape)"
CPU_TIME = "seconds"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.merge", description=main.__doc__)
    p.add_argument("--workdir", required=True)
    p.add_argument("--scheme", required=True, help=f"one of {sorted(SCHEMES)}")
    p.add_argument("--window", type=int, required=True, help="number of checkpoints merged")
    p.add_argument("--interval", type=int, default=None, help="steps between merged checkpoints (default: "
                   "the run's checkpoint.every)")
    p.add_argument("--end", type=int, default=None, help="last step of the window (default: the latest)")
    p.add_argument("--decay", type=float, default=0.9, help="ema: decay per checkpoint")
    return p


def main(argv=None) -> int:
    """``python -m experiments.merge --workdir DIR --scheme cosine --window 8 [--interval N] [--end STEP]``."""
    args = parser().parse_args(argv)
    try:
        check_request(args.workdir, args.scheme, args.window, args.interval, args.end, args.decay)  # before compute
        evaluate = Evaluator(read_json(os.path.join(args.workdir, "config.json")))
        out = merge_workdir(args.workdir, args.scheme, args.window, args.interval, args.end, args.decay, evaluate)
    except (MergeError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for tag, s in out["sets"].items():
        print(f"{tag}: steps {s['steps'][0]}..{s['steps'][-1]} -> merged {s['merged']} | last {s['last']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
