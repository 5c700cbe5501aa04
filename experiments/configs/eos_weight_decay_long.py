"""The phase transition, run long: does λ1 stay below 2/η with weight decay, or is it still climbing?

    python -m experiments.eos_weight_decay --config=experiments/configs/eos_weight_decay_long.py --workdir runs/eos_long

The default experiment stops at 2,500 steps, where λ1 at η = 0.1, λ = 0.01 sits at ~0.28·2/η. This config runs
that point (and λ = 0 beside it) for 10,000 steps; summary.json's "eos" rows report the plateau test of the ratio
λ1/(2/η) over the last half (jaxlab.plateau): plateau_verdict, plateau_change with its 90% band, plateaued.
"""
from experiments.configs.eos_weight_decay import get_config as base


def get_config():
    c = base()
    c.train.steps = 10_000
    c.train.log_every = 50
    c.train.eval_every = 500
    c.curvature.every = 100
    c.curvature.tol, c.curvature.num_iters = 0.0, 10  # 10 fixed warm steps, as its docs/curvature.md numbers were measured
    c.sweep.axes = "optim.lr=0.1;optim.weight_decay=0,0.01"
    return c
