"""HVPs and top eigenpairs against the dense float64 Hessian of a 5-8-6-3 tanh MLP (123 parameters)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import eig_gap, hvp, lanczos, lobpcg_top_k, make_hvp, power_iteration


def flat(tree):
    return np.asarray(ravel_pytree(tree)[0])


def flat_stack(tree):
    return np.asarray(jax.vmap(lambda t: ravel_pytree(t)[0])(tree))


def test_hvp_matches_dense(problem):
    v = problem.unravel(np.random.default_rng(1).normal(size=problem.flat.shape))
    want = problem.H @ flat(v)
    got = jax.jit(lambda p, v: hvp(problem.loss, p, v))(problem.params, v)
    np.testing.assert_allclose(flat(got), want, rtol=1e-10, atol=1e-12)
    lin = jax.jit(lambda p, v: make_hvp(problem.loss_fn, p, problem.batch, linearize=True)(v))
    np.testing.assert_allclose(flat(lin(problem.params, v)), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [6, 5])   # divides N = 24; leaves a remainder chunk
def test_chunked_hvp_equals_unchunked(problem, chunk_size):
    v = problem.unravel(np.random.default_rng(2).normal(size=problem.flat.shape))
    full = jax.jit(lambda p, v: make_hvp(problem.loss_fn, p, problem.batch)(v))(problem.params, v)
    chunked = jax.jit(lambda p, b, v: make_hvp(problem.loss_fn, p, b, chunk_size=chunk_size)(v))
    np.testing.assert_allclose(flat(chunked(problem.params, problem.batch, v)), flat(full), rtol=1e-10, atol=1e-13)


def test_lanczos_top_k_matches_dense_and_compiles_once(problem):
    k, traces = 4, []

    def measure(p, key):
        traces.append(1)
        return lanczos(make_hvp(problem.loss_fn, p, problem.batch), p, key, num_iters=60, k=k,
                       return_vectors=True, return_residuals=True)

    fn = jax.jit(measure)
    vals, vecs, res = fn(problem.params, jax.random.PRNGKey(3))
    other = fn(jax.tree.map(lambda x: 1.01 * x, problem.params), jax.random.PRNGKey(4))[0]
    assert len(traces) == 1 and not np.allclose(other, vals)   # new params and key: same program
    np.testing.assert_allclose(np.asarray(vals), problem.evals[:k], rtol=1e-6)
    cos = np.abs(np.sum(flat_stack(vecs) * problem.evecs[:, :k].T, axis=1))
    assert np.all(cos > 0.999), cos
    np.testing.assert_allclose(np.linalg.norm(flat_stack(vecs), axis=1), 1.0, rtol=1e-10)
    assert np.all(np.asarray(res) < 1e-6 * abs(problem.evals[0]))
    gap = float(eig_gap(vals))
    np.testing.assert_allclose(gap, np.log(problem.evals[0] / problem.evals[1]), rtol=1e-6)


def test_lanczos_full_dimension_breakdown(problem):
    """num_iters ≥ n: the Krylov space saturates; all eigenvalues (incl. the negative ones) are recovered."""
    n = problem.flat.shape[0]
    mv = make_hvp(problem.loss, problem.params)
    vals, _ = jax.jit(lambda key: lanczos(mv, problem.params, key, num_iters=n + 10, k=n))(jax.random.PRNGKey(4))
    scale = np.abs(problem.evals).max()
    np.testing.assert_allclose(np.asarray(vals), problem.evals, atol=1e-8 * scale)


def test_power_iteration(problem):
    assert problem.evals[0] > abs(problem.evals[-1])  # the dominant eigenvalue is the top one here
    mv = make_hvp(problem.loss, problem.params)
    lam, u = jax.jit(lambda key: power_iteration(mv, problem.params, key, num_iters=300))(jax.random.PRNGKey(5))
    # converges like (λ2/λ1)^t; 300 steps are ample for this spectrum
    np.testing.assert_allclose(float(lam), problem.evals[0], rtol=1e-6)
    assert abs(flat(u) @ problem.evecs[:, 0]) > 0.999


def test_warm_starts(problem):
    """LOBPCG and a Lanczos restart, started near the answer, need few iterations."""
    mv = make_hvp(problem.loss, problem.params)
    noisy = problem.evecs[:, :2] + 0.05 * np.random.default_rng(0).normal(size=(problem.flat.shape[0], 2))
    X0 = jax.vmap(problem.unravel)(jnp.asarray(noisy.T))
    vals, vecs = jax.jit(lambda X: lobpcg_top_k(mv, problem.params, X, num_iters=40))(X0)
    np.testing.assert_allclose(np.asarray(vals), problem.evals[:2], rtol=1e-6)
    cos = np.abs(np.sum(flat_stack(vecs) * problem.evecs[:, :2].T, axis=1))
    assert np.all(cos > 0.999), cos

    v0 = problem.unravel(jnp.asarray(noisy[:, 0]))
    run = jax.jit(lambda key, v0: lanczos(mv, problem.params, key, num_iters=8, v0=v0)[0])
    cold = run(jax.random.PRNGKey(6), problem.unravel(jnp.asarray(np.random.default_rng(6).normal(size=noisy.shape[0]))))
    warm = run(jax.random.PRNGKey(6), v0)
    err = lambda v: abs(float(v[0]) - problem.evals[0]) / problem.evals[0]  # noqa: E731
    assert err(warm) < 1e-6 and err(warm) < err(cold)



def test_start_vectors_and_preconditioners_laid_out_unlike_params_are_refused(problem):
    """A start vector (or preconditioner) with the parameters' size but another layout would be raveled into the
    wrong coordinates without an error: chex refuses it at the entry point."""
    from jaxlab.curvature import preconditioned_matvec

    mv = make_hvp(problem.loss_fn, problem.params, problem.batch)
    flat_v0 = {"all": jnp.ones(problem.flat.shape)}             # same number of entries, one leaf
    with pytest.raises(AssertionError):
        lanczos(mv, problem.params, jax.random.PRNGKey(0), 5, v0=flat_v0)
    with pytest.raises(AssertionError):
        power_iteration(mv, problem.params, jax.random.PRNGKey(0), 5, v0=flat_v0)
    with pytest.raises(AssertionError):
        preconditioned_matvec(mv, flat_v0)(problem.params)
