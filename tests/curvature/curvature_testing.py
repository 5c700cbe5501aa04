"""The float64 reference model of the curvature tests: tanh MLP 5-8-6-3 with MSE (plain functions, importable
from the test modules; fixtures live in conftest.py)."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.schema import base_config

SIZES = (5, 8, 6, 3)


def init_mlp(key, sizes=SIZES):
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        key, k1, k2 = jax.random.split(key, 3)
        params[f"layer_{i}"] = {"kernel": jax.random.normal(k1, (a, b)) / np.sqrt(a),
                                "bias": 0.1 * jax.random.normal(k2, (b,))}
    return params


def apply_mlp(params, x):
    """x [N, 5] -> [N, 3]."""
    n = len(params)
    for i in range(n):
        layer = params[f"layer_{i}"]
        x = x @ layer["kernel"] + layer["bias"][None, :]
        if i < n - 1:
            x = jnp.tanh(x)
    return x


def mse(out, y):
    """½‖f − y‖² summed over outputs, mean over examples (jaxlab's convention, kept in float64)."""
    return jnp.mean(0.5 * jnp.sum((out - y) ** 2, axis=-1))


def loss_fn(params, batch):
    x, y = batch
    return mse(apply_mlp(params, x), y)


def small_config():
    """Tanh MLP 40-6-10 (316 parameters) on 64 MNIST-1D examples, full-batch GD, MSE."""
    c = base_config()
    c.data.num_train, c.data.num_test = 64, 32
    c.model.widths = (6,)
    c.model.activation = "tanh"
    c.loss.name = "mse"
    c.optim.lr = 0.05
    c.train.steps, c.train.log_every = 20, 10
    c.train.progress = False
    c.curvature.every = 10
    c.curvature.num_iters = 80
    c.curvature.k = 3
    c.curvature.quantities = ("sharpness", "eig_gap")
    return c
