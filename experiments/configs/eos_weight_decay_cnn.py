"""Edge of stability × weight decay for a CNN: full-batch GD, tanh CNN (2 conv blocks) on MNIST-1D, MSE.

    python -m experiments.eos_weight_decay --config=experiments/configs/eos_weight_decay_cnn.py --workdir runs/eos_cnn

Question (4) of the EoS × weight-decay study: how weight decay changes the oscillations at the edge of stability.
Every step is logged (train.log_every = 1), so summary.json's loss_increase_frac (fraction of steps whose loss went
up) and loss_osc_last_half (mean |Δ log loss| per step) are per-step measures; ratio_std_last_half is the
amplitude of λ1/(2/η) around 1 over the last half.
"""
from experiments.configs.eos_weight_decay import get_config as mlp_config
from jaxlab.models import model_config


def get_config():
    c = mlp_config()
    c.model = model_config("cnn", channels=(16, 16), kernel_size=3, pool="max", activation="tanh")
    c.train.steps = 1000
    c.train.log_every = 1
    c.train.eval_every = 100
    c.curvature.every = 20
    c.curvature.tol, c.curvature.num_iters = 0.0, 10   # 10 fixed warm steps, as its docs/curvature.md numbers were measured
    c.sweep.axes = "optim.lr=0.1;optim.weight_decay=0,0.003,0.01,0.03"
    return c
