"""Merge coefficients against their definitions: a simplex point for every scheme, and the WSM duality
(merging constant-lr checkpoints = applying the decay weights w_i to the gradients), checked in float64."""
import numpy as np
import pytest

from jaxlab.checkpoint.coefficients import SCHEMES, WSM_SHAPES, coefficients, implied_gradient_weights, wsm_weights


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("window", [1, 2, 3, 8, 33])
def test_coefficients_are_a_convex_combination(scheme, window):
    c = coefficients(scheme, window)
    assert c.shape == (window,)
    assert np.all(c >= 0), c
    np.testing.assert_allclose(c.sum(), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", sorted(WSM_SHAPES))
def test_wsm_coefficients_reproduce_the_decay_weights(shape):
    k = 9
    c = coefficients(shape, k + 1)
    w = wsm_weights(shape, k)
    f = WSM_SHAPES[shape]
    np.testing.assert_allclose(w, [f(i / (k + 1)) for i in range(1, k + 1)], atol=1e-15)
    np.testing.assert_allclose(implied_gradient_weights(c), w, atol=1e-12)        # w_i = Σ_{j≥i} c_j
    np.testing.assert_allclose([c[0], c[-1]], [1 - w[0], w[-1]], atol=1e-12)       # c_0 = 1 − w_1, c_k = w_k
    assert np.all(np.diff(w) <= 1e-15)                                             # a decay: non-increasing


@pytest.mark.parametrize("shape", sorted(WSM_SHAPES))
def test_merge_of_constant_lr_iterates_equals_decayed_update(shape):
    """θ_j = θ_0 − η Σ_{i≤j} g_i at constant η; Σ c_j θ_j must equal θ_0 − η Σ_i w_i g_i (the paper's identity)."""
    rng = np.random.default_rng(0)
    k, eta = 7, 0.3
    theta0, g = rng.normal(size=5), rng.normal(size=(k, 5))
    thetas = np.concatenate([theta0[None], theta0 - eta * np.cumsum(g, axis=0)])   # [k+1, 5]
    merged = coefficients(shape, k + 1) @ thetas
    np.testing.assert_allclose(merged, theta0 - eta * wsm_weights(shape, k) @ g, rtol=1e-12, atol=1e-12)


def test_ema_matches_its_recursion():
    rng = np.random.default_rng(1)
    thetas, d = rng.normal(size=(6, 3)), 0.7
    e = thetas[0]
    for t in thetas[1:]:
        e = d * e + (1 - d) * t
    np.testing.assert_allclose(coefficients("ema", 6, decay=d) @ thetas, e, rtol=1e-12)


def test_uniform_is_the_mean():
    np.testing.assert_allclose(coefficients("uniform", 4), np.full(4, 0.25))


@pytest.mark.parametrize("bad", [dict(scheme="cosin", window=3), dict(scheme="uniform", window=0),
                                 dict(scheme="ema", window=3, decay=1.0)])
def test_bad_requests_name_the_value(bad):
    with pytest.raises(ValueError) as e:
        coefficients(**bad)
    assert any(repr(v) in str(e.value) for v in bad.values() if v not in ("uniform", "ema", 3))
