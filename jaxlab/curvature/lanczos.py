"""Top eigenpairs of a symmetric linear operator on parameter pytrees (the Hessian, GGN, preconditioned H, ...).

    eigvals, eigvecs = lanczos(matvec, params, key, num_iters=20, k=2, return_vectors=True)
    # eigvals [k] descending; eigvecs: pytree like params with a leading axis k on every leaf (unit norm)
    eig_gap(eigvals)                               # log(λ1/λ2): small → top eigenvalue poorly separated
    lam, u = power_iteration(matvec, params, key, num_iters=50)
    eigvals, eigvecs = lobpcg_top_k(matvec, params, X0, num_iters=10)   # warm start from previous eigvecs
    eigvals, eigvecs = lanczos(matvec, params, key, 10, k=1, v0=u_prev)  # Lanczos restarted from u_prev

All are jittable: one ``lax.while_loop`` of fixed length (``krylov.run_lanczos``; LOBPCG's own while loop), no
Python per iteration. ``matvec`` maps a
pytree like ``params`` to one like ``params``; only the structure/dtype of ``params`` is used. Internally the
Krylov basis is a flat [m+1, n] array (n = number of parameters), so memory is (m+1)·n floats.
"""
from __future__ import annotations

from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import linalg
from jaxlab.curvature.krylov import run_lanczos
from jaxlab.tree import tree_random_normal, tree_scale, tree_vdot

PyTree = Any


def _flat_operator(matvec: Callable, params: PyTree):
    """(flat params [n], unravel, flat matvec [n] -> [n])."""
    flat, unravel = ravel_pytree(params)
    mv = lambda x: ravel_pytree(matvec(unravel(x)))[0].astype(flat.dtype)  # noqa: E731
    return flat, unravel, mv


def _stack_unravel(unravel, vecs: jax.Array) -> PyTree:
    """[k, n] -> pytree like params with a leading axis k on each leaf."""
    return jax.vmap(unravel)(vecs)


def _start_vector(key, params, v0):
    if v0 is None:
        return ravel_pytree(tree_random_normal(key, params))[0]
    chex.assert_trees_all_equal_shapes(v0, params)  # a flat start of the right size but wrong layout is a bug
    return ravel_pytree(v0)[0].astype(ravel_pytree(params)[0].dtype)


def lanczos_tridiag(mv: Callable, v: jax.Array, m: int, key: jax.Array):
    """m Lanczos steps of the flat symmetric operator ``mv`` ([n] -> [n]) from ``v`` [n] (normalised here).

    Returns (basis [m+1, n] orthonormal rows, alpha [m], beta [m]): T = tridiag(beta[:-1], alpha, beta[:-1]) is
    the projection of the operator on span(basis[:m]). Full reorthogonalisation (classical Gram–Schmidt, twice,
    over the rows filled so far: :func:`jaxlab.curvature.krylov.run_lanczos` with tol = 0); on breakdown (β ≈ 0:
    the Krylov space is invariant) β is set to 0 and the iteration continues from a random vector (from ``key``)
    orthogonal to the basis, so T's eigenvalues remain eigenvalues of the operator.
    """
    st = run_lanczos(lambda x: (mv(x), None), v, m, key)
    return st.basis[: m + 1], st.alpha, st.beta


def tridiag_eigh(alpha: jax.Array, beta: jax.Array):
    """Eigen-decomposition (ascending θ [m], S [m, m]) of the Lanczos matrix T from alpha [m], beta [m]."""
    tri = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    return linalg.eigh(tri)


def lanczos(matvec: Callable, params: PyTree, key: jax.Array, num_iters: int, k: int = 1,
            return_vectors: bool = False, v0: PyTree | None = None, return_residuals: bool = False):
    """Top-k eigenpairs by ``num_iters`` Lanczos steps with full (twice-applied) reorthogonalisation.

    matvec: symmetric operator on pytrees like ``params``; key: start vector when ``v0`` is None (v0: a pytree
    like params, e.g. the previous top eigenvector — a restart). m = min(num_iters, n) steps, k ≤ m.
    Returns ``(eigvals [k] descending, eigvecs)`` with eigvecs a pytree whose leaves carry a leading axis k
    (unit-norm Ritz vectors) or None; with ``return_residuals`` also ``residuals [k]`` = ‖A u − λ u‖
    estimated as |β_m · s_m| (the standard Ritz bound; small ⇒ converged).
    If the Krylov space becomes invariant (β ≈ 0, e.g. num_iters ≥ rank), the iteration continues from a fresh
    random vector orthogonal to the basis, so the Ritz values stay eigenvalues of the operator.
    """
    flat, unravel, mv = _flat_operator(matvec, params)
    m = min(int(num_iters), flat.shape[0])
    if not 1 <= k <= m:
        raise ValueError(f"lanczos: need 1 <= k={k} <= min(num_iters={num_iters}, n={flat.shape[0]})")
    key_start, key_restart = jax.random.split(key)
    basis, alpha, beta = lanczos_tridiag(mv, _start_vector(key_start, params, v0), m, key_restart)
    theta, s = tridiag_eigh(alpha, beta)              # ascending
    top = jnp.arange(m - 1, m - 1 - k, -1)
    eigvals = theta[top]
    out = [eigvals, None]
    if return_vectors:
        vecs = s[:, top].T @ basis[:m]               # [k, n]
        vecs = vecs / jnp.linalg.norm(vecs, axis=1, keepdims=True)
        out[1] = _stack_unravel(unravel, vecs)
    if return_residuals:
        out.append(jnp.abs(beta[m - 1] * s[m - 1, top]))
    return tuple(out)


def eigvec(eigvecs: PyTree, i: int) -> PyTree:
    """The i-th eigenvector (a pytree like params) of a stacked ``eigvecs`` (leading axis k on each leaf)."""
    return jax.tree.map(lambda a: a[i], eigvecs)


def eig_gap(eigvals: jax.Array) -> jax.Array:
    """log(λ1/λ2) from descending eigenvalues [k ≥ 2]: near 0 means λ1 ≈ λ2, so the top eigenvector (and a power
    iteration's λ1) is unreliable; NaN when λ2 ≤ 0 (no positive second eigenvalue to compare against). λ2 converges
    after λ1, so a short Lanczos run overestimates the gap: check its residuals too."""
    l1, l2 = eigvals[0], eigvals[1]
    return jnp.where((l1 > 0) & (l2 > 0), jnp.log(jnp.abs(l1) / jnp.where(l2 > 0, l2, 1.0)), jnp.nan)


def power_iteration(matvec: Callable, params: PyTree, key: jax.Array, num_iters: int,
                    v0: PyTree | None = None):
    """Dominant eigenpair (largest |λ|) by ``num_iters`` power steps; returns (Rayleigh quotient [], unit eigvec).

    Cheaper per step than Lanczos (no basis) but converges like (λ2/λ1)^t; at the edge of stability the top
    Hessian eigenvalue is positive and dominant, which is the case it serves. Works on pytrees directly.
    """
    if v0 is not None:
        chex.assert_trees_all_equal_shapes(v0, params)
    v = tree_random_normal(key, params) if v0 is None else jax.tree.map(lambda a, p: a.astype(p.dtype), v0, params)
    v = tree_scale(v, 1.0 / jnp.sqrt(tree_vdot(v, v)))

    def body(_, carry):
        v, _ = carry
        hv = matvec(v)
        lam = tree_vdot(v, hv)
        return tree_scale(hv, 1.0 / jnp.sqrt(tree_vdot(hv, hv))), lam

    v, _ = jax.lax.fori_loop(0, int(num_iters), body, (v, jnp.zeros([], ravel_pytree(params)[0].dtype)))
    return tree_vdot(v, matvec(v)), v


def lobpcg_top_k(matvec: Callable, params: PyTree, X0: PyTree, num_iters: int, tol=None):
    """Top-k eigenpairs by LOBPCG (``jax.experimental.sparse.linalg.lobpcg_standard``) from a warm start.

    X0: pytree like params with a leading axis k on each leaf (e.g. the previous measurement's ``eigvecs``); needs
    5k < n. num_iters: LOBPCG's maximum iteration count (it stops earlier once converged to ``tol``).
    Returns (eigvals [k] descending, eigvecs like X0, unit norm). Note LOBPCG applies the operator to k vectors
    per iteration (vmapped), so a step costs ~k matvecs.
    """
    from jax.experimental.sparse.linalg import lobpcg_standard

    flat, unravel, mv = _flat_operator(matvec, params)
    X = jax.vmap(lambda t: ravel_pytree(t)[0])(X0).astype(flat.dtype).T   # [n, k]
    block_mv = lambda Xb: jax.vmap(mv, in_axes=1, out_axes=1)(Xb)  # noqa: E731
    theta, U, _ = lobpcg_standard(block_mv, X, m=int(num_iters), tol=tol)
    order = jnp.argsort(-theta)
    U = U[:, order]
    U = U / jnp.linalg.norm(U, axis=0, keepdims=True)
    return theta[order], _stack_unravel(unravel, U.T)
