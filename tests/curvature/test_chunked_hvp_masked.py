"""Chunked HVP with masked token-mean losses (labels < 0 ignored, uneven masks across chunks) against the unchunked
HVP and the dense float64 Hessian. L = Σ_valid ℓ / #valid, so chunks must weigh by their valid-token counts."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab.curvature.hvp import make_hvp, valid_count
from jaxlab.losses import cross_entropy

N, T, F, C = 12, 5, 4, 3


def _problem():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(F, C)) / 2), "b": jnp.asarray(0.1 * rng.normal(size=C))}
    x = jnp.asarray(rng.normal(size=(N, T, F)))
    y = rng.integers(0, C, size=(N, T))
    valid = np.arange(T)[None, :] < rng.integers(0, T + 1, size=(N, 1))   # 0..T valid tokens per example
    valid[:4] = True                                                       # first chunk full, others sparse
    y = jnp.asarray(np.where(valid, y, -1))
    return params, (x, y)


def apply(params, x):
    return jnp.tanh(x @ params["w"] + params["b"][None, None, :])   # [N, T, C] logits in the inputs' dtype


def masked_ce64(params, batch):
    """jaxlab's masked token-mean cross-entropy, kept in float64 (jaxlab.losses casts logits to float32)."""
    x, y = batch
    out = apply(params, x).reshape(-1, C)
    labels = y.reshape(-1)
    mask = (labels >= 0).astype(out.dtype)
    nll = jax.nn.logsumexp(out, -1) - jnp.take_along_axis(out, jnp.maximum(labels, 0)[:, None], -1)[:, 0]
    return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1.0)


@pytest.mark.parametrize("chunk_size", [4, 5])           # divides N = 12; leaves a remainder chunk of 2
def test_chunked_masked_hvp_is_exact(x64, chunk_size):
    params, batch = _problem()
    counts = [int(valid_count((batch[0][i:i + chunk_size], batch[1][i:i + chunk_size])))
              for i in range(0, N, chunk_size)]
    assert len(set(counts)) > 1, counts                  # uneven masks: the case the old n_c/N weights got wrong
    flat, unravel = ravel_pytree(params)
    v = unravel(jnp.asarray(np.random.default_rng(1).normal(size=flat.shape)))
    dense = jax.hessian(lambda f: masked_ce64(unravel(f), batch))(flat) @ ravel_pytree(v)[0]
    full = ravel_pytree(make_hvp(masked_ce64, params, batch)(v))[0]
    chunked = jax.jit(lambda p, b, v: make_hvp(masked_ce64, p, b, chunk_size=chunk_size)(v))(params, batch, v)
    np.testing.assert_allclose(full, dense, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ravel_pytree(chunked)[0], dense, rtol=1e-10, atol=1e-13)
    # The per-example weighting (the previous behaviour) is measurably wrong on this batch.
    by_examples = make_hvp(masked_ce64, params, batch, chunk_size=chunk_size, chunk_weight=lambda b: b[0].shape[0])
    assert np.max(np.abs(ravel_pytree(by_examples(v))[0] - dense)) > 1e-3 * np.max(np.abs(dense))


def test_chunked_hvp_with_jaxlab_cross_entropy(x64):
    """The shipped loss (float32 inside): chunked == unchunked to float32 accuracy."""
    params, batch = _problem()
    loss = lambda p, b: cross_entropy(apply(p, b[0]), b[1])   # noqa: E731
    flat, unravel = ravel_pytree(params)
    v = unravel(jnp.asarray(np.random.default_rng(2).normal(size=flat.shape)))
    full = ravel_pytree(make_hvp(loss, params, batch)(v))[0]
    chunked = ravel_pytree(make_hvp(loss, params, batch, chunk_size=5)(v))[0]
    np.testing.assert_allclose(chunked, full, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(full))))


def test_chunk_with_no_valid_token_weighs_zero(x64):
    params, (x, y) = _problem()
    y = y.at[8:].set(-1)                                 # the last chunk of 4 is all padding
    flat, unravel = ravel_pytree(params)
    v = unravel(jnp.ones_like(flat))
    full = ravel_pytree(make_hvp(masked_ce64, params, (x, y))(v))[0]
    chunked = ravel_pytree(make_hvp(masked_ce64, params, (x, y), chunk_size=4)(v))[0]
    np.testing.assert_allclose(chunked, full, rtol=1e-10, atol=1e-13)
