"""Merge a run's checkpoints and evaluate the result (uniform, EMA or a WSM decay shape).

    python -m experiments.merge --workdir runs/wsm --scheme cosine --window 8
    python -m experiments.merge --workdir runs/wsm --scheme ema --decay 0.8 --window 16 --interval 40

Writes the merged parameters to DIR/merged/<scheme>-w<window>-i<interval>/<set> (an orbax checkpoint) and their
train/test loss and accuracy, with the last checkpoint's for comparison, into DIR/summary.json under "merge".
"""
import sys

from jaxlab.checkpoint.merge import main

if __name__ == "__main__":
    sys.exit(main())
