"""Mean-square stability of ZO-GD (jaxlab/curvature/zo_stability.py) against Monte-Carlo simulation (float64).

- the second-moment operator M: M^T s_0 vs the sample mean of (Qᵀθ_T)² over many ZO-GD runs that use
  jaxlab.optim.zo_gradient itself (rotated H, so rotation invariance is exercised); tolerance 5 standard errors;
- the secular condition φ(η) < 1 vs the dense spectral radius ρ(M) < 1, and ρ(M(η*)) = 1 to 1e-8;
- the critical step η* vs the observed divergence threshold of simulated ZO-GD: within 5%;
- the λ_max / trace bounds bracket η*.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.curvature.zo_stability import (zo_critical_lr, zo_critical_lr_bounds, zo_ms_operator, zo_ms_radius,
                                           zo_stable, zo_stability_function)
from jaxlab.optim import zo_gradient


def test_operator_matches_monte_carlo_zo_gd(x64):
    d, n, steps, chains = 6, 2, 8, 40_000
    rng = np.random.default_rng(0)
    lam = np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.05])
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    h = q @ np.diag(lam) @ q.T
    lr = 0.8 * zo_critical_lr(lam, n)
    theta0 = rng.normal(size=d)
    loss = lambda th: 0.5 * th @ jnp.asarray(h) @ th   # noqa: E731

    def run(key):
        def step(th, k):
            return th - lr * zo_gradient(loss, th, k, n, 0.1), None

        return jax.lax.scan(step, jnp.asarray(theta0), jax.random.split(key, steps))[0]

    final = np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), chains)))
    sq = (final @ q) ** 2                                          # [chains, d]: squared eigen-coordinates
    want = np.linalg.matrix_power(zo_ms_operator(lam, lr, n), steps) @ (q.T @ theta0) ** 2
    se = sq.std(0) / np.sqrt(chains)
    np.testing.assert_array_less(np.abs(sq.mean(0) - want), 5 * se)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [1, 4, 32])
def test_secular_condition_equals_dense_spectral_radius(seed, n):
    rng = np.random.default_rng(seed)
    lam = np.sort(rng.exponential(size=12))[::-1]
    lam[-2:] = 0.0                                                 # flat directions are neutral, left out
    crit = zo_critical_lr(lam, n)
    assert zo_ms_radius(lam, crit, n) == pytest.approx(1.0, abs=1e-8)
    assert zo_stability_function(lam, crit, n) == pytest.approx(1.0, abs=1e-8)
    for factor in (0.3, 0.9, 0.999, 1.001, 1.1, 2.0):
        lr = factor * crit
        assert zo_stable(lam, lr, n) == zo_stable(lam, lr, n, dense=True) == (factor < 1)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [1, 2, 10, 1000])
def test_bounds_bracket_the_critical_lr(seed, n):
    rng = np.random.default_rng(seed)
    lam = rng.exponential(size=30) ** 2
    lo, hi = zo_critical_lr_bounds(lam.max(), lam.sum(), n)
    crit = zo_critical_lr(lam, n)
    assert lo <= crit <= hi and hi <= 2 * lo
    assert crit <= 2 / lam.max()                                   # ZO-GD is never more stable than GD


def test_many_directions_recover_gd_threshold():
    lam = np.array([4.0, 1.0, 0.5])
    assert zo_critical_lr(lam, 10**6) == pytest.approx(2 / 4.0, rel=1e-5)


def test_negative_curvature_is_unstable():
    assert not zo_stable([1.0, -0.1], 1e-3, 4) and zo_critical_lr([1.0, -0.1], 4) == 0.0


def test_predicted_boundary_matches_observed_divergence_threshold():
    """ZO-GD on a diagonal quadratic (d = 50, n = 4) at η = f·η*: E‖θ‖² (mean over 400 runs) shrinks for f < 1 and
    grows for f > 1. The observed threshold (where the growth rate over steps 150..300 crosses 1, interpolated on
    a 2% grid) lies within 5% of η*."""
    d, n, chains, steps = 50, 4, 400, 300
    lam = np.linspace(0.05, 1.0, d)
    crit = zo_critical_lr(lam, n)
    factors = np.linspace(0.9, 1.1, 11)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(factors.size, chains, d))
    eta = (factors * crit)[:, None, None]
    for t in range(steps):
        if t == steps // 2:
            half = (theta ** 2).sum(-1).mean(-1)
        u = rng.normal(size=(n, factors.size, chains, d))
        proj = np.einsum("kecd,ecd->kec", u, lam * theta)              # u_iᵀ H θ: exact two-point quotients
        theta = theta - eta * np.einsum("kec,kecd->ecd", proj, u) / n
    log_rate = np.log((theta ** 2).sum(-1).mean(-1) / half) / (steps - steps // 2)
    assert log_rate[0] < 0 < log_rate[-1]
    i = int(np.argmax(log_rate > 0))                                   # first grid point that grows
    observed = np.interp(0.0, log_rate[i - 1:i + 1], factors[i - 1:i + 1])
    print(f"observed threshold {observed:.4f}·η*")
    assert abs(observed - 1.0) < 0.05, (observed, log_rate)
