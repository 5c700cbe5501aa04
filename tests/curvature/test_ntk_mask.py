"""The NTK's top eigenvalue with masked labels equals the masked MSE's Gauss–Newton λ1 (dense float64 reference).

A tiny token model: x [6, 5, 4] -> outputs [6, 5, 3] (a tanh layer, a causal running mean over the 5 tokens so
rows share more than weights, a linear readout), 51 parameters. Labels [6, 5] mask rows unevenly (10 of 30 valid,
one example with none). The reference is G = Jᵀ H_out J with J = jacfwd of the outputs [90, 51] and H_out =
jax.hessian of jaxlab.losses.mse in the outputs [90, 90], both dense in float64; eigenvalues by numpy.
Tolerance: 1e-6 relative (Lanczos with ≥ rank iterations is exact to ~1e-12 here).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab.curvature.ntk import mse_row_weights, ntk_matvec, ntk_top_eigenvalues
from jaxlab.losses import mse as jaxlab_mse

B, T, D, H, C = 6, 5, 4, 6, 3
# Valid rows per example: 3, 0, 1, 5, 1, 0 -> 10 of 30 (the brief's count), uneven positions.
VALID = np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0],
                  [0, 0, 0, 0, 0]], bool)


def apply_tokens(params, x):
    """x [B, T, D] -> [B, T, C]."""
    h = jnp.tanh(x @ params["w1"] + params["b1"][None, None, :])
    h = jnp.cumsum(h, axis=1) / jnp.arange(1, x.shape[1] + 1, dtype=h.dtype)[None, :, None]   # causal mean
    return h @ params["w2"] + params["b2"][None, None, :]


def _problem():
    k = jax.random.split(jax.random.PRNGKey(0), 6)
    params = {"w1": jax.random.normal(k[0], (D, H)) / 2, "b1": 0.1 * jax.random.normal(k[1], (H,)),
              "w2": jax.random.normal(k[2], (H, C)) / 2, "b2": 0.1 * jax.random.normal(k[3], (C,))}
    x = jax.random.normal(k[4], (B, T, D))
    labels = np.asarray(jax.random.randint(k[5], (B, T), 0, C))
    return params, x, jnp.asarray(np.where(VALID, labels, -1)), jnp.asarray(labels)


def _jacobian(params, x):
    """Explicit J [B·T·C, n] = ∂ outputs / ∂ θ (jitted: eager jacfwd dispatches op by op)."""
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.jit(jax.jacfwd(lambda f: apply_tokens(unravel(f), x).reshape(-1)))(flat))


def _dense_ggn_eigvals(params, x, labels):
    """Descending eigenvalues of Jᵀ H_out J for jaxlab's MSE, dense float64."""
    J = _jacobian(params, x)                                                                    # [90, 51]
    out = apply_tokens(params, x)
    H_out = jax.jit(jax.hessian(lambda o: jaxlab_mse(o.reshape(out.shape), labels)))(out.reshape(-1))
    return np.linalg.eigvalsh(J.T @ np.asarray(H_out) @ J)[::-1]


_CACHE = {}


@pytest.fixture
def problem(x64):
    if "p" not in _CACHE:               # float64 arrays stay float64 after x64 is left
        _CACHE["p"] = _problem()
    return _CACHE["p"]


def test_row_weights_follow_the_loss(problem):
    params, x, masked, full = problem
    w, scale = mse_row_weights((B, T, C), masked)
    assert w.shape == (B, T) and w.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(w), VALID.astype(float))
    assert float(scale) == 1 / 10
    # The loss's Hessian in the outputs is diag(w) ⊗ I_C · scale, exactly.
    out = apply_tokens(params, x)
    H_out = jax.jit(jax.hessian(lambda o: jaxlab_mse(o.reshape(out.shape), masked)))(out.reshape(-1))
    np.testing.assert_allclose(np.asarray(H_out), np.diag(np.repeat(VALID.reshape(-1), C) / 10.0), atol=1e-15)
    # Labels flattened the way the loss flattens them; dense float targets count every row; none valid -> scale 1.
    np.testing.assert_array_equal(np.asarray(mse_row_weights((B, T, C), masked.reshape(-1))[0]), np.asarray(w))
    wd, sd = mse_row_weights((B, C), jnp.zeros((B, C)))
    assert np.all(np.asarray(wd) == 1) and float(sd) == 1 / B
    assert float(mse_row_weights((B, T, C), -jnp.ones((B, T), jnp.int32))[1]) == 1.0
    with pytest.raises(ValueError):
        mse_row_weights((B, T, C), jnp.zeros((B, T + 1), jnp.int32))


def test_masked_ntk_equals_dense_masked_ggn(problem):
    params, x, masked, _ = problem
    ref = _dense_ggn_eigvals(params, x, masked)
    w, scale = mse_row_weights((B, T, C), masked)
    got, vecs = jax.jit(lambda p, key: ntk_top_eigenvalues(apply_tokens, p, x, key, num_iters=40, k=3, scale=scale,
                                                           row_weights=w, return_vectors=True))(
        params, jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(got), ref[:3], rtol=1e-6)
    # The Ritz vectors live on the valid rows only and are eigenvectors of the weighted operator.
    assert vecs.shape == (3, B, T, C) and np.abs(np.asarray(vecs)[:, ~VALID]).max() < 1e-12
    mv = ntk_matvec(apply_tokens, params, x, scale, w)
    np.testing.assert_allclose(np.asarray(mv(vecs[0])), float(got[0]) * np.asarray(vecs[0]), atol=1e-9)
    # The unmasked-rows operator (what the tracker recorded before) gives a different, wrong number here.
    old = ntk_top_eigenvalues(apply_tokens, params, x, jax.random.PRNGKey(1), 40, scale=1 / (B * T))[0]
    assert abs(float(old[0]) - ref[0]) > 0.05 * ref[0], (float(old[0]), ref[0])   # measured 2.612 vs 3.019


def test_unmasked_weights_reproduce_the_old_result_and_the_dense_ggn(problem):
    params, x, _, full = problem
    w, scale = mse_row_weights((B, T, C), full)
    assert float(scale) == 1 / (B * T)
    key = jax.random.PRNGKey(2)
    old = ntk_top_eigenvalues(apply_tokens, params, x, key, 40, k=2, scale=1.0 / (B * T))[0]
    new = ntk_top_eigenvalues(apply_tokens, params, x, key, 40, k=2, scale=scale, row_weights=w)[0]
    np.testing.assert_allclose(np.asarray(new), np.asarray(old), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(new), _dense_ggn_eigvals(params, x, full)[:2], rtol=1e-6)


def test_fractional_weights_match_the_weighted_ggn(problem):
    # row_weights need not be 0/1: scale · W^½ J Jᵀ W^½ has the nonzero eigenvalues of scale · Jᵀ (W ⊗ I_C) J.
    params, x, _, _ = problem
    w = jax.random.uniform(jax.random.PRNGKey(3), (B, T))
    J = _jacobian(params, x)
    G = 0.3 * J.T @ (np.repeat(np.asarray(w).reshape(-1), C)[:, None] * J)
    got = ntk_top_eigenvalues(apply_tokens, params, x, jax.random.PRNGKey(4), 60, k=2, scale=0.3, row_weights=w)[0]
    np.testing.assert_allclose(np.asarray(got), np.linalg.eigvalsh(G)[::-1][:2], rtol=1e-6)
    with pytest.raises(ValueError):
        ntk_top_eigenvalues(apply_tokens, params, x, jax.random.PRNGKey(4), 10, row_weights=w[:, :2])
