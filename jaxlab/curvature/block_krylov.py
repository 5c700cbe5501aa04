"""Block Lanczos on vmapped operator products, stopped by Ritz residuals like ``krylov.lanczos_adaptive``.

    res = block_lanczos(matvec, params, key, block_size=4, k=2, tol=1e-3, max_iters=48)
    res = block_lanczos(matvec, params, key, block_size=4, k=2, tol=1e-3, v0=prev_vecs)   # warm: [j ≤ p, ...]

Each step applies the operator to a block of p vectors in one ``jax.vmap`` call (one primal pass shared, GEMMs
instead of GEMVs), so on an accelerator a step costs about one product; a cluster λ1 ≈ λ2 ≈ … ≈ λp is resolved at
the rate of the gap to λ_{p+1}. On a small CPU a block of p costs about p products, and single-vector Lanczos is
the better choice there. Full reorthogonalisation (classical Gram–Schmidt, twice), then a QR of the block:
with V_j the block's vectors as columns,
V_{j+1} B_{j+1} = A V_j − V_j A_j − V_{j−1} B_jᵀ. The block-tridiagonal T (A_j on the diagonal, B_j below) is
projected in a padded [S·p, S·p] array; the residual of a Ritz pair (θ, y = V s) is ‖B_{j+1} s_last‖, s_last the
last p entries of s. Returns ``krylov.Krylov`` with num_iters counting operator products (p per step).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import linalg
from jaxlab.curvature.krylov import Krylov, checks, orthogonalise

PyTree = Any


def _ritz_dense(T: jax.Array, m):
    """Eigenpairs (descending θ [D], S [D, D]) of the leading m × m block of symmetric T [D, D]; rows ≥ m are
    decoupled and placed below its spectrum (as ``krylov.ritz``)."""
    D = T.shape[0]
    filled = jnp.arange(D) < m
    both = filled[:, None] & filled[None, :]
    floor = jnp.min(jnp.where(filled, jnp.diag(T), jnp.inf)) - jnp.sum(jnp.abs(jnp.where(both, T, 0.0))) - 1.0
    T = jnp.where(both, T, 0.0) + jnp.diag(jnp.where(filled, 0.0, floor))
    theta, s = linalg.eigh(T)
    return theta[::-1], s[:, ::-1]


def block_lanczos(matvec: Callable, params: PyTree, key: jax.Array, *, block_size: int, k: int = 1, tol=1e-3,
                  max_iters: int = 48, v0: PyTree | None = None, return_vectors: bool = False) -> Krylov:
    """Top-k eigenpairs by block Lanczos with p = block_size.

    max_iters: the cap in operator products (⌊max_iters/p⌋ block steps, at least 1); v0: None or a pytree like
    params with a leading axis j ≤ p (e.g. the previous Ritz vectors; the rest of the first block is random).
    tol: relative Ritz residual bound (0: run to the cap). Returns :class:`jaxlab.curvature.krylov.Krylov`.
    """
    flat, unravel = ravel_pytree(params)
    n, dtype, p = flat.shape[0], flat.dtype, int(block_size)
    steps = max(int(max_iters) // p, 1)
    D = steps * p
    if not 1 <= k <= min(D, n) or p > n:
        raise ValueError(f"block_lanczos: need 1 <= k={k} <= steps·p={D} and block_size={p} <= n={n}")
    mv = lambda x: ravel_pytree(matvec(unravel(x)))[0].astype(dtype)  # noqa: E731
    block_mv = jax.vmap(mv)
    k_start, k_fill = jax.random.split(key)
    X = jax.random.normal(k_start, (p, n), dtype)
    if v0 is not None:
        V = jax.vmap(lambda t: ravel_pytree(t)[0])(v0).astype(dtype)
        X = X.at[: V.shape[0]].set(V + 1e-3 * X[: V.shape[0]] / jnp.sqrt(n))
    X = linalg.qr(X.T)[0].T
    check = checks(tol)
    fill = jax.random.normal(k_fill, (p, n), dtype)

    def body(st):
        j, basis, T, _, done = st
        Xj = jax.lax.dynamic_slice_in_dim(basis, j * p, p)
        W = block_mv(Xj)                                              # [p, n]
        Aj = Xj @ W.T
        Aj = 0.5 * (Aj + Aj.T)
        W = jax.vmap(lambda w: orthogonalise(w, basis))(W)              # against every stored block (incl. X_j)
        Q, B = linalg.qr(W.T)               # columns: A V_j = V_j A_j + V_{j−1} B_jᵀ + Q B: X_{j+1} = Qᵀ
        # Rank loss (an invariant block): columns of Q with a tiny diagonal in B get fresh random directions.
        small = jnp.abs(jnp.diag(B)) <= jnp.finfo(dtype).eps ** 0.75 * jnp.maximum(jnp.max(jnp.abs(Aj)), 1.0)
        Xn = jnp.where(small[:, None], jnp.roll(fill, j, axis=1), Q.T)
        Xn = jax.vmap(lambda w: orthogonalise(w, basis))(Xn)
        Xn = linalg.qr(Xn.T)[0].T
        Bn = jnp.where(small[:, None], 0.0, B)                          # B_{j+1} [p, p] = V_{j+1}ᵀ A V_j
        basis = jax.lax.dynamic_update_slice_in_dim(basis, Xn, (j + 1) * p, 0)
        T = jax.lax.dynamic_update_slice(T, Aj, (j * p, j * p))
        Tb = jax.lax.dynamic_update_slice(jnp.zeros((D + p, D + p), dtype), Bn, ((j + 1) * p, j * p))
        T = T + Tb + Tb.T
        m = (j + 1) * p
        res = jnp.zeros(k, dtype)
        done = (j + 1) >= steps
        if check:
            theta, s = _ritz_dense(T[:D, :D], m)
            last = jax.lax.dynamic_slice_in_dim(s[:, :k], j * p, p)   # [p, k]
            res = jnp.linalg.norm(Bn @ last, axis=0)
            done = done | (jnp.all(res <= tol * jnp.abs(theta[:k])) & (m >= k))
        return j + 1, basis, T, res, done

    basis = jnp.zeros(((steps + 1) * p, n), dtype).at[:p].set(X)
    init = (jnp.int32(0), basis, jnp.zeros((D + p, D + p), dtype), jnp.zeros(k, dtype), jnp.bool_(False))
    j, basis, T, _, _ = jax.lax.while_loop(lambda st: ~st[-1], body, init)
    m = j * p
    theta, s = _ritz_dense(T[:D, :D], m)
    B_last = jax.lax.dynamic_slice(T, (m, m - p), (p, p))           # B_{j+1}, below the last diagonal block
    last = jax.lax.dynamic_slice_in_dim(s[:, :k], m - p, p)
    res = jnp.linalg.norm(B_last @ last, axis=0)
    converged = jnp.all(res <= tol * jnp.abs(theta[:k])) if check else jnp.bool_(False)
    vecs = None
    if return_vectors:
        Y = s[:, :k].T @ basis[:D]
        vecs = jax.vmap(unravel)(Y / jnp.linalg.norm(Y, axis=1, keepdims=True))
    return Krylov(theta[:k], vecs, res, m, converged)
