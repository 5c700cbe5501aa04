"""The float64 reference model of the curvature tests: tanh MLP 5-8-6-3 with MSE (plain functions, importable
from the test modules; fixtures live in conftest.py)."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import data as data_lib
from jaxlab.schema import base_config, validate
from jaxlab import optim
from jaxlab.train import make_train

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


def trained_f64(config, steps: int):
    """(trainer, hp, data, state) of ``config`` in float64 after ``steps`` optimiser steps (config validated)."""
    validate(config)
    ds = data_lib.get_dataset(config.data)
    trainer = make_train(config, ds)
    hp = optim.traced_numbers(config.optim, dtype=np.float64)
    f64 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, t)  # noqa: E731
    data = f64(trainer.device_data(ds))
    state = trainer.init(jax.random.PRNGKey(0), hp)
    state = state.replace(params=f64(state.params), opt_state=f64(state.opt_state))
    for _ in range(steps):
        state, _ = trainer.step(state, hp, data)
    return trainer, hp, data, state


def reference_dimension(ell):
    """Kaplan–Yorke by a plain loop over the exponents sorted descending: the last j with Σ_{i≤j} ℓ_i ≥ 0."""
    ell = sorted(ell, reverse=True)
    total, k = 0.0, 0
    for j, e in enumerate(ell):
        if total + e < 0:
            return k + total / abs(e)
        total, k = total + e, j + 1
    return float(k)
