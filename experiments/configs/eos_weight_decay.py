"""Edge of stability × weight decay: full-batch GD, tanh MLP 40-200-200-10, MSE, MNIST-1D (1,000 examples).

    python -m experiments.eos_weight_decay --workdir runs/eos
    python -m experiments.eos_weight_decay --config.sweep.axes="optim.lr=0.05;optim.weight_decay=0,0.01"
"""
from jaxlab.config import base_config


def get_config():
    c = base_config()
    c.data.name = "mnist1d"
    c.data.num_train = 1000
    c.model.name = "mlp"
    c.model.widths = (200, 200)
    c.model.activation = "tanh"
    c.loss.name = "mse"
    c.optim.name = "sgd"
    c.optim.lr = 0.05
    c.train.steps = 1000
    c.train.batch_size = 0
    c.train.log_every = 10
    c.sweep.axes = "optim.weight_decay=0,0.001"
    return c
