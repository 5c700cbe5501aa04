"""Adaptive and block Lanczos (jaxlab.curvature.krylov, block_krylov) against the dense float64 Hessian of the
5-8-6-3 tanh MLP (123 parameters): cold and warm starts, the residual stopping rule, vmapped runs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.curvature import make_hvp
from jaxlab.curvature.block_krylov import block_lanczos
from jaxlab.curvature.krylov import lanczos_adaptive
from jaxlab.curvature.linearise import linearise

from curvature_testing import mse


def _dist_to_spectrum(theta, evals):
    return np.min(np.abs(np.asarray(theta)[:, None] - evals[None, :]), axis=1)


@pytest.mark.parametrize("k", [1, 3])
def test_adaptive_lanczos_cold_stops_when_residuals_are_within_tol(problem, k):
    """Cold start: stops before the cap with every top-k residual ≤ tol·|θ|; each θ is then within its residual of
    an eigenvalue (checked on the dense spectrum) and, converged this far, equal to λ1..λk to 1e-9 relative."""
    mv = make_hvp(problem.loss_fn, problem.params, problem.batch)
    tol = 1e-8
    res = jax.jit(lambda key: lanczos_adaptive(mv, problem.params, key, k=k, tol=tol, max_iters=100,
                                               return_vectors=True))(jax.random.PRNGKey(3))
    m = int(res.num_iters)
    assert bool(res.converged) and k <= m < 100, m
    theta, r = np.asarray(res.eigvals), np.asarray(res.residuals)
    assert np.all(r <= tol * np.abs(theta) * (1 + 1e-9))
    assert np.all(_dist_to_spectrum(theta, problem.evals) <= r + 1e-12)
    np.testing.assert_allclose(theta, problem.evals[:k], rtol=1e-9)
    u = np.asarray(jax.flatten_util.ravel_pytree(jax.tree.map(lambda a: a[0], res.eigvecs))[0])
    assert abs(u @ problem.evecs[:, 0]) > 1 - 1e-8


def test_adaptive_lanczos_loose_tol_stops_early_and_residual_bounds_the_error(problem):
    """tol = 1e-2: fewer steps than tol = 1e-8, and |θ1 − λ1| ≤ r1 (the bound the rule relies on)."""
    mv = make_hvp(problem.loss_fn, problem.params, problem.batch)
    run = jax.jit(lambda tol: lanczos_adaptive(mv, problem.params, jax.random.PRNGKey(3), tol=tol, max_iters=100))
    loose, tight = run(1e-2), run(1e-8)
    assert int(loose.num_iters) < int(tight.num_iters)
    err = abs(float(loose.eigvals[0]) - problem.evals[0])
    assert err <= float(loose.residuals[0]) and float(loose.residuals[0]) <= 1e-2 * float(loose.eigvals[0])


def test_adaptive_lanczos_warm_start_needs_fewer_steps(problem):
    """Started from the top eigenvector plus 1% noise: converged in fewer products than from a random vector,
    to the same λ1 (1e-9)."""
    mv = make_hvp(problem.loss_fn, problem.params, problem.batch)
    u = problem.evecs[:, 0] + 0.01 * np.random.default_rng(0).standard_normal(problem.evecs.shape[0]) / 11
    run = jax.jit(lambda v0: lanczos_adaptive(mv, problem.params, jax.random.PRNGKey(3), tol=1e-8, max_iters=100,
                                              v0=v0))
    cold = jax.jit(lambda: lanczos_adaptive(mv, problem.params, jax.random.PRNGKey(3), tol=1e-8, max_iters=100))()
    warm = run(problem.unravel(jnp.asarray(u)))
    assert int(warm.num_iters) < int(cold.num_iters), (int(warm.num_iters), int(cold.num_iters))
    np.testing.assert_allclose(float(warm.eigvals[0]), problem.evals[0], rtol=1e-9)


def test_tol_zero_runs_the_cap_and_vmap_keeps_each_members_count(problem):
    """tol = 0 runs exactly max_iters steps; vmapped over start keys each member stops at its own step with the
    values of its own (unvmapped) run."""
    mv = make_hvp(problem.loss_fn, problem.params, problem.batch)
    fixed = jax.jit(lambda: lanczos_adaptive(mv, problem.params, jax.random.PRNGKey(0), tol=0.0, max_iters=17))()
    assert int(fixed.num_iters) == 17 and not bool(fixed.converged)
    one = lambda key: lanczos_adaptive(mv, problem.params, key, k=2, tol=1e-6, max_iters=100)  # noqa: E731
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    batched = jax.jit(jax.vmap(one))(keys)
    for i in range(4):
        single = jax.jit(one)(keys[i])
        assert int(batched.num_iters[i]) == int(single.num_iters)
        np.testing.assert_allclose(np.asarray(batched.eigvals[i]), np.asarray(single.eigvals), rtol=1e-10)


def test_lanczos_records_the_jvp_of_each_basis_vector(problem):
    """With the joint linearisation (has_aux), the stacked aux rows are J v_i of the Lanczos vectors: checked
    against jax.jvp of the network at the returned basis."""
    lin = linearise(problem.apply, mse, problem.params, problem.batch)
    res = jax.jit(lambda: lanczos_adaptive(lin.hvp_jvp, problem.params, jax.random.PRNGKey(2), tol=1e-6,
                                           max_iters=30, has_aux=True, return_basis=True))()
    m = int(res.num_iters)
    for i in (0, m // 2, m - 1):
        v = problem.unravel(res.basis[i])
        jv = jax.jvp(lambda p: problem.apply(p, problem.x), (problem.params,), (v,))[1]
        np.testing.assert_allclose(np.asarray(res.aux[i]), np.asarray(jv), rtol=1e-9, atol=1e-12)
    assert float(jnp.max(jnp.abs(res.aux[m:]))) == 0.0


@pytest.mark.parametrize("warm", [False, True])
def test_block_lanczos_matches_dense(problem, warm):
    """Block size 3, top-3: cold, or warm from the dense top-3 eigenvectors plus noise (then fewer products);
    values to 1e-8 relative and within their residuals of the spectrum."""
    mv = make_hvp(problem.loss_fn, problem.params, problem.batch)
    v0 = None
    if warm:
        noise = 1e-3 * np.random.default_rng(1).standard_normal((3, problem.evecs.shape[0]))
        v0 = jax.vmap(problem.unravel)(jnp.asarray(problem.evecs[:, :3].T + noise))
    run = jax.jit(lambda v0: block_lanczos(mv, problem.params, jax.random.PRNGKey(4), block_size=3, k=3, tol=1e-9,
                                           max_iters=120, v0=v0))
    res = run(v0)
    theta, r = np.asarray(res.eigvals), np.asarray(res.residuals)
    assert bool(res.converged) and int(res.num_iters) % 3 == 0
    np.testing.assert_allclose(theta, problem.evals[:3], rtol=1e-8)
    assert np.all(_dist_to_spectrum(theta, problem.evals) <= r + 1e-12)
    if warm:
        assert int(res.num_iters) < int(run(None).num_iters)
