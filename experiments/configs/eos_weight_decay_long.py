"""The phase transition, run long: does λ1 stay below 2/η with weight decay, or is it still climbing?

    python -m experiments.eos_weight_decay --config=experiments/configs/eos_weight_decay_long.py --workdir runs/eos_long

The default experiment stops at 2,500 steps, where λ1 at η = 0.1, λ = 0.01 sits at ~0.28·2/η. This config runs
that point (and λ = 0 beside it) for 10,000 steps; summary.json's "eos" rows report plateau_slope_per_1k (the
ratio λ1/(2/η)'s least-squares slope over the last third) with its 95% band and "plateaued".
"""
from experiments.configs.eos_weight_decay import get_config as base


def get_config():
    c = base()
    c.train.steps = 10_000
    c.train.log_every = 50
    c.train.eval_every = 500
    c.curvature.every = 100
    c.sweep.axes = "optim.lr=0.1;optim.weight_decay=0,0.01"
    return c
