"""Trace, SLQ density, NTK and GGN against dense float64 references on the 5-8-6-3 tanh MLP."""
import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import (ggn_matvec, hutchinson_trace, lanczos, make_hvp, ntk_matvec, ntk_top_eigenvalues,
                              slq_density)
from jaxlab.curvature.plots import plot_density

from curvature_testing import apply_mlp, mse

# One program for both NTK tests (scale is traced).
NTK_TOP3 = jax.jit(lambda p, x, key, scale: ntk_top_eigenvalues(apply_mlp, p, x, key, num_iters=40, k=3,
                                                                scale=scale)[0])


def test_hutchinson_trace_within_three_standard_errors(problem):
    mv = make_hvp(problem.loss, problem.params)
    S = 200
    mean, se = jax.jit(lambda key: hutchinson_trace(mv, problem.params, key, S))(jax.random.PRNGKey(0))
    trace = np.trace(problem.H)
    assert abs(float(mean) - trace) < 3 * float(se), (float(mean), trace, float(se))
    # The reported error bar is the estimator's: Var(zᵀHz) = 2 Σ_{i≠j} H_ij² for Rademacher z.
    se_theory = np.sqrt(2 * (np.sum(problem.H ** 2) - np.sum(np.diag(problem.H) ** 2)) / S)
    assert 0.7 < float(se) / se_theory < 1.4, (float(se), se_theory)


def test_slq_density_integrates_to_one_with_mean_trace_over_n(problem, tmp_path):
    n = problem.flat.shape[0]
    P = 16
    mv = make_hvp(problem.loss, problem.params)
    grid, dens = jax.jit(lambda key: slq_density(mv, problem.params, key, num_iters=40, num_probes=P))(
        jax.random.PRNGKey(1))
    grid, dens = np.asarray(grid), np.asarray(dens)
    np.testing.assert_allclose(np.trapezoid(dens, grid), 1.0, rtol=1e-3)
    mean = np.trapezoid(grid * dens, grid)
    # Each probe's quadrature mean is vᵀHv (v uniform on the sphere): E = tr/n, Var = 2/(n+2)·(Σλ²/n − (Σλ/n)²).
    lam = problem.evals
    se = np.sqrt(2 / (n + 2) * (np.mean(lam ** 2) - np.mean(lam) ** 2) / P)
    assert abs(mean - lam.mean()) < 4 * se, (mean, lam.mean(), se)
    # The smoothed density reaches the extreme eigenvalues (Lanczos finds them first).
    assert grid[0] < lam[-1] and grid[-1] > lam[0]
    plot_density(grid, dens, str(tmp_path / "d.png"), marks={"λmax": lam[0]})
    assert (tmp_path / "d.png").stat().st_size > 1000


def _jacobian(problem):
    """Explicit J [N·C, n] of the network outputs."""
    J = jax.jit(jax.jacfwd(lambda f: problem.apply(problem.unravel(f), problem.x)))(problem.flat)
    return np.asarray(J).reshape(-1, problem.flat.shape[0])


def test_ntk_matches_explicit_jacobian_gram(problem):
    J = _jacobian(problem)
    K = J @ J.T                                                     # [N·C, N·C]
    u = np.random.default_rng(2).normal(size=problem.y.shape)
    got = jax.jit(lambda p, u: ntk_matvec(problem.apply, p, problem.x)(u))(problem.params, u)
    np.testing.assert_allclose(np.asarray(got).reshape(-1), K @ np.asarray(u).reshape(-1), rtol=1e-10, atol=1e-12)
    vals = NTK_TOP3(problem.params, problem.x, jax.random.PRNGKey(3), 1.0)
    np.testing.assert_allclose(np.asarray(vals), np.linalg.eigvalsh(K)[::-1][:3], rtol=1e-6)


def test_ggn_matches_dense_and_ntk(problem):
    J = _jacobian(problem)
    out = problem.apply(problem.params, problem.x)
    H_out = jax.jit(jax.hessian(lambda o: mse(o.reshape(out.shape), problem.y)))(out.reshape(-1))  # [N·C, N·C]
    G = J.T @ np.asarray(H_out) @ J
    mv = lambda p: ggn_matvec(problem.apply, mse, p, problem.batch)  # noqa: E731
    v = np.random.default_rng(4).normal(size=problem.flat.shape)
    got = jax.jit(lambda p, v: ravel_pytree(mv(p)(problem.unravel(v)))[0])(problem.params, v)
    np.testing.assert_allclose(np.asarray(got), G @ v, rtol=1e-10, atol=1e-12)
    vals, _ = jax.jit(lambda p, key: lanczos(mv(p), p, key, num_iters=60, k=2))(problem.params,
                                                                              jax.random.PRNGKey(5))
    np.testing.assert_allclose(np.asarray(vals), np.linalg.eigvalsh(G)[::-1][:2], rtol=1e-6)
    # For the mean MSE, H_out = I/N: the GGN's top eigenvalues are the NTK's scaled by 1/N.
    N = problem.x.shape[0]
    ntk = NTK_TOP3(problem.params, problem.x, jax.random.PRNGKey(6), 1.0 / N)
    np.testing.assert_allclose(np.asarray(ntk[:2]), np.asarray(vals), rtol=1e-6)
