"""The HVP the curvature tracker uses, on the Transformer LM: unchunked ``make_hvp`` of the trainer's masked
token-mean cross-entropy against the dense float64 Hessian (jax.hessian) of a tiny LM (1 layer, d_model 4,
vocab 6, 2 sequences of 5 tokens, some positions masked; ~150 parameters)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import make_hvp
from jaxlab.data.dataset import Dataset
from jaxlab.models import TransformerLM, model_config
from jaxlab.schema import base_config
from jaxlab.train import make_train


@pytest.mark.parametrize("attention", ["softmax", "retention"])
def test_lm_hvp_matches_dense_float64_hessian(x64, attention):
    V, T, D = 6, 5, 4
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (2, T)).astype(np.int32)
    y = rng.integers(0, V, (2, T)).astype(np.int32)
    y[0, :3] = -1                      # masked positions (non-queries); the rows hold 3 and 5 tokens
    y[1, 3] = -1
    c = base_config()
    c.data.name, c.model = "mqar", model_config("transformer", attention=attention, activation="tanh")
    ds = Dataset("mqar", x, y, x, y, num_classes=V, task="lm")
    model = TransformerLM(vocab_size=V, d_model=D, num_layers=1, num_heads=1, mlp_ratio=1, attention=attention,
                          activation="gelu", dtype=jnp.float64)
    trainer = dataclasses.replace(make_train(c, ds), model=model)   # the trainer's loss_fn, in float64
    params = model.init(jax.random.PRNGKey(0), jnp.asarray(x))["params"]
    params = jax.tree.map(lambda p: (p + 0.3 * jax.random.normal(jax.random.PRNGKey(1), p.shape)).astype(jnp.float64),
                          params)      # away from the init's symmetric point (norm scales of exactly 1)
    flat, unravel = ravel_pytree(params)
    assert flat.dtype == jnp.float64 and flat.size < 200
    batch = (jnp.asarray(x), jnp.asarray(y))
    H = np.asarray(jax.jit(jax.hessian(lambda f: trainer.loss_fn(unravel(f), batch)))(flat))
    np.testing.assert_allclose(H, H.T, rtol=1e-9, atol=1e-12)
    assert np.abs(H).max() > 1e-3   # a Hessian with something in it

    mv = jax.jit(lambda p, v: make_hvp(trainer.loss_fn, p, batch)(v))
    mv_lin = jax.jit(lambda p, v: make_hvp(trainer.loss_fn, p, batch, linearize=True)(v))
    for seed in range(3):
        v = np.random.default_rng(10 + seed).normal(size=flat.shape)
        want = H @ v
        for fn in (mv, mv_lin):
            got = np.asarray(ravel_pytree(fn(params, unravel(jnp.asarray(v))))[0])
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())
