"""A float64 reference problem: tanh MLP 5-8-6-3, MSE on 24 random examples, with its dense Hessian."""
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from curvature_testing import SIZES, apply_mlp, init_mlp, loss_fn


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
