"""The multi-process test's config: a seconds-long EoS-style run (full-batch GD, tanh MLP, MSE, λ1 tracked)."""
from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.num_train, c.data.num_test = 256, 128
    c.model.widths = (16, 16)
    c.model.activation = "tanh"
    c.loss.name = "mse"
    c.optim.lr = 0.1
    c.train.steps, c.train.log_every = 40, 10
    c.train.progress = False
    c.curvature.every = 20
    c.curvature.num_iters = 8
    c.checkpoint.every = 10
    c.sweep.seeds = 2
    c.sweep.axes = "optim.lr=0.05,0.1"
    return c
