"""The float64 references: quadratic vs token-by-token recurrence, and the non-causal form vs a plain loop."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.kernels.linear_attention import reference
from linear_attention_testing import problem, rel_err


@pytest.mark.parametrize("decay", [None, "fixed", "gate"])
@pytest.mark.parametrize("normalize", [False, True])
def test_quadratic_matches_recurrence(decay, normalize):
    p = problem(0, 2, 37, 3, 8, 5, decay=decay, positive=normalize, state=True, normalize=normalize)
    with jax.enable_x64():
        args = [jnp.asarray(p[n]) for n in ("q", "k", "v")]
        g = None if p["log_decay"] is None else jnp.asarray(p["log_decay"])
        s0 = jnp.asarray(p["initial_state"])
        kw = dict(scale=0.7, normalize=normalize)
        o1, s1 = jax.jit(functools.partial(reference.quadratic, **kw))(*args, g, initial_state=s0)
        o2, s2 = jax.jit(functools.partial(reference.recurrent, **kw))(*args, g, initial_state=s0)
        assert o1.dtype == jnp.float64
    assert rel_err(o1, o2) < 1e-12 and rel_err(s1, s2) < 1e-12


@pytest.mark.parametrize("decay", [None, "gate"])
def test_noncausal_matches_loop(decay):
    p = problem(1, 1, 6, 2, 3, 4, decay=decay)
    q, k, v = p["q"], p["k"], p["v"]
    g = np.zeros((1, 6, 2)) if p["log_decay"] is None else p["log_decay"]
    G = np.cumsum(g, axis=1)
    want = np.zeros_like(v)
    for t in range(6):
        for s in range(6):
            w = np.exp(-abs(G[:, t] - G[:, s]))[..., None]                    # [B, H, 1]
            want[:, t] += w * np.sum(q[:, t] * k[:, s], -1, keepdims=True) * v[:, s]
    with jax.enable_x64():
        got, _ = reference.quadratic(*(jnp.asarray(x) for x in (q, k, v)),
                                     None if decay is None else jnp.asarray(g), scale=1.0, causal=False)
    assert rel_err(got, want) < 1e-12
