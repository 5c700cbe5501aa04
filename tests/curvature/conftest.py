"""A float64 reference problem: tanh MLP 5-8-6-3, MSE on 24 random examples, with its dense Hessian."""
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

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


_CACHE = {}


@pytest.fixture
def problem(x64):
    """Built once per session (the dense Hessian is the slow part); arrays stay float64 after x64 is left."""
    if "problem" not in _CACHE:
        _CACHE["problem"] = _build()
    return _CACHE["problem"]


def _build():
    # Everything jitted: eager op-by-op dispatch of jax.hessian takes ~15 s, compiled < 1 s.
    @jax.jit
    def data(key):
        kp, kx, ky = jax.random.split(key, 3)
        return init_mlp(kp), jax.random.normal(kx, (24, SIZES[0])), jax.random.normal(ky, (24, SIZES[-1]))

    params, x, y = data(jax.random.PRNGKey(0))
    flat, unravel = ravel_pytree(params)
    hessian_at = jax.jit(jax.hessian(lambda f: loss_fn(unravel(f), (x, y))))   # flat θ [n] -> H [n, n]
    dense = hessian_at(flat)
    evals, evecs = np.linalg.eigh(np.asarray(dense))
    return SimpleNamespace(params=params, batch=(x, y), x=x, y=y, flat=flat, unravel=unravel,
                           H=np.asarray(dense), evals=evals[::-1], evecs=evecs[:, ::-1],
                           loss=lambda p: loss_fn(p, (x, y)), loss_fn=loss_fn, apply=apply_mlp,
                           hessian_at=hessian_at, top_at=lambda f: np.linalg.eigvalsh(np.asarray(hessian_at(f)))[-1])
