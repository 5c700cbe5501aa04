"""The token-chunked LM HVP (jaxlab.curvature.lm_hvp) against the dense float64 Hessian of a tiny Transformer
LM's masked token-mean cross-entropy (vocab 7, 2 sequences of 6 tokens, some masked; ~200 parameters)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab.bench.curvature_lm import transformer_split
from jaxlab.curvature.lm_hvp import make_token_chunked_hvp, token_chunked_loss
from jaxlab.losses import cross_entropy
from jaxlab.models import TransformerLM


@pytest.mark.parametrize("chunk", [1, 3, 6])
def test_chunked_lm_hvp_matches_dense_hessian(x64, chunk):
    """Chunks of 1, 3 and 6 tokens: the chunked loss equals the model's loss (rtol 1e-12) and H v equals the dense
    float64 Hessian's (rtol 1e-8) for 3 random v."""
    V, T = 7, 6
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, V, (2, T)).astype(np.int32))
    y = rng.integers(0, V, (2, T)).astype(np.int32)
    y[0, :2] = -1
    y[1, 4] = -1
    y = jnp.asarray(y)
    model = TransformerLM(vocab_size=V, d_model=4, num_layers=1, num_heads=1, mlp_ratio=1, dtype=jnp.float64)
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    params = jax.tree.map(lambda p: (p + 0.3 * jax.random.normal(jax.random.PRNGKey(1), p.shape)).astype(jnp.float64),
                          params)
    flat, unravel = ravel_pytree(params)
    loss = lambda p: cross_entropy(model.apply({"params": p}, x), y)  # noqa: E731
    feats, readout = transformer_split(model)
    chunked = token_chunked_loss(feats, readout, chunk)
    np.testing.assert_allclose(float(chunked(params, (x, y))), float(loss(params)), rtol=1e-12)
    H = np.asarray(jax.jit(jax.hessian(lambda f: loss(unravel(f))))(flat))
    mv = jax.jit(lambda v: make_token_chunked_hvp(feats, readout, params, (x, y), chunk)(v))
    for seed in range(3):
        v = np.random.default_rng(10 + seed).standard_normal(flat.shape)
        got = np.asarray(ravel_pytree(mv(unravel(jnp.asarray(v))))[0])
        np.testing.assert_allclose(got, H @ v, rtol=1e-8, atol=1e-10 * np.abs(H @ v).max())
