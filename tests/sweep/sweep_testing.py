"""Shared by the sweep tests: a config whose sweeps take seconds."""
from jaxlab.models import model_config
from jaxlab.schema import base_config


def sweep_config(model: str = "mlp"):
    """MNIST-1D subset, minibatch SGD, 20 steps logged every 10; a tiny MLP or CNN."""
    c = base_config()
    c.data.num_train, c.data.num_test = 128, 128
    c.model = model_config(model, **({"channels": (4, 8)} if model == "cnn" else {"widths": (16, 16)}),
                           activation="tanh")
    c.loss.name = "mse"
    c.optim.lr = 0.05
    c.train.steps, c.train.log_every, c.train.batch_size = 20, 10, 32
    c.train.progress = False
    return c
