"""ZO-GD at η = 0.1 (the default grid's largest step) for 6,000 steps: does η/η*(H), still rising at 2,500 steps in
experiments/configs/zo_eos.py, settle at its mean-square boundary or cross it? Same model, data and tracking, a
dense Hessian every 60 steps (101 measurements: enough for the plateau test over the last half).

    python -m experiments.zo_eos --config=experiments/configs/zo_eos_long.py --workdir runs/zo_eos_long
"""
from experiments.configs.zo_eos import get_config as base


def get_config():
    c = base()
    c.train.steps = 6000
    c.train.eval_every = 1000
    c.curvature.every = 60
    c.sweep.axes = "optim.lr=0.1"
    return c
