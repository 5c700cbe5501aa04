"""The Lanczos engine: one ``lax.while_loop`` that stops once the top-k Ritz pairs are converged.

    res = lanczos_adaptive(matvec, params, key, k=2, tol=1e-3, max_iters=40)   # cold start from ``key``
    res.eigvals [k], res.residuals [k], res.num_iters [] (operator products), res.converged []
    res = lanczos_adaptive(matvec, params, key, k=2, tol=1e-3, v0=u_prev, return_vectors=True)   # warm start

Stopping rule: after step m the top-k Ritz values θ_j of the m × m Lanczos matrix T_m have residuals
r_j = ‖A y_j − θ_j y_j‖ = β_m |s_mj| (s_j the eigenvector of T_m, y_j = V_m s_j). The loop stops at the first m
with r_j ≤ tol·|θ_j| for every j < k (and m ≥ min_iters), or at m = max_iters. Each θ_j is then within r_j of an
eigenvalue of A (Weyl/Bauer–Fike for symmetric A); the error of a simple top eigenvalue is usually far smaller,
about r_j²/gap. ``tol = 0`` runs exactly ``max_iters`` steps (the fixed-count Lanczos).

Every step applies the operator once, subtracts the three-term recurrence and then runs one classical Gram–Schmidt
pass against the whole stored basis (full reorthogonalisation). The basis is a flat [max_iters + 1, n] array: memory
(max_iters + 1)·n floats, and each step reads all of it twice, so keep the cap near what is needed.
Jittable and vmappable (a vmapped loop runs until every member has stopped; the others keep their result).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import linalg
from jaxlab.tree import tree_random_normal

PyTree = Any


class Krylov(NamedTuple):
    """Result of :func:`lanczos_adaptive`."""
    eigvals: jax.Array        # [k] top Ritz values, descending
    eigvecs: Any              # pytree like params with a leading axis k (unit Ritz vectors), or None
    residuals: jax.Array      # [k] ‖A y − θ y‖ of each Ritz pair
    num_iters: jax.Array      # [] int32: operator products (Lanczos steps) used
    converged: jax.Array      # [] bool: every top-k residual within tol (False when the cap stopped it)
    aux: Any = None           # the operator's aux output per step, stacked [max_iters, ...] (rows ≥ num_iters: 0)
    basis: Any = None         # [max_iters + 1, n] flat orthonormal Lanczos vectors (rows ≥ num_iters: 0), when asked
    coeffs: Any = None        # [max_iters, k] Ritz vectors in the basis: y_j = Σ_i coeffs[i, j]·basis[i]


class _State(NamedTuple):
    i: jax.Array
    basis: jax.Array
    alpha: jax.Array
    beta: jax.Array
    aux: Any
    scale: jax.Array
    done: jax.Array


def orthogonalise(w: jax.Array, basis: jax.Array, passes: int = 2) -> jax.Array:
    """w [n] minus its projection on the rows of basis [m, n] (rows not yet filled are zero): classical
    Gram–Schmidt, ``passes`` times (two: "twice is enough")."""
    for _ in range(passes):
        w = w - basis.T @ (basis @ w)
    return w


def ritz(alpha: jax.Array, beta: jax.Array, m):
    """Eigenpairs of the leading m × m block of T = tridiag(beta[:-1], alpha, beta[:-1]) (alpha, beta: [M]).

    Returns (θ [M] descending, S [M, M]: column j the eigenvector of θ_j) where the first min(m, M) values are
    T_m's eigenvalues: rows ≥ m are decoupled and placed below every eigenvalue of T_m (Gershgorin), so the
    shapes stay static inside a loop. Column j of S is zero past row m for those eigenvalues.
    """
    M = alpha.shape[0]
    idx = jnp.arange(M)
    filled = idx < m
    off = jnp.where(idx[1:] < m, beta[:-1], 0.0)
    floor = (jnp.min(jnp.where(filled, alpha, jnp.inf))
             - 2 * jnp.max(jnp.where(filled, jnp.abs(beta), 0.0)) - 1.0)
    tri = jnp.diag(jnp.where(filled, alpha, floor)) + jnp.diag(off, 1) + jnp.diag(off, -1)
    theta, s = linalg.eigh(tri)
    return theta[::-1], s[:, ::-1]


def checks(tol) -> bool:
    """Whether a tolerance asks for the convergence test (a traced one always does; a Python 0 never)."""
    return not (isinstance(tol, (int, float)) and tol == 0)


def run_lanczos(mv: Callable, v: jax.Array, max_iters: int, key: jax.Array, *, k: int = 1, tol=0.0,
                min_iters: int = 1, aux_like: Any = None) -> _State:
    """The loop on a flat operator: mv(x [n]) -> (A x [n], aux pytree like ``aux_like`` or None).

    v [n]: start vector (normalised here). Returns the final state: i = steps done, basis [M + 1, n], alpha, beta [M]
    (M = max_iters), aux buffers [M, ...]. On breakdown (β ≤ eps^0.75·‖T‖: the Krylov space is invariant) β is
    set to 0 and the iteration continues from a random vector (from ``key``) orthogonal to the basis, so the
    Ritz values remain eigenvalues of A; a breakdown step never counts as converged.
    """
    n, dtype = v.shape[0], v.dtype
    M = int(max_iters)
    tiny = jnp.finfo(dtype).eps ** 0.75
    restart = jax.random.normal(key, (n,), dtype)
    check = checks(tol)
    lo = max(int(min_iters), k)

    def body(st: _State) -> _State:
        i = st.i
        vi = st.basis[i]
        w, aux = mv(vi)
        a = jnp.vdot(vi, w)
        # The three-term recurrence, then one Gram–Schmidt pass against every stored row (full
        # reorthogonalisation: what it removes is the rounding drift, so one pass suffices).
        prev = jnp.maximum(i - 1, 0)                   # at i = 0, beta[0] is still 0
        w = w - a * vi - st.beta[prev] * st.basis[prev]
        w = orthogonalise(w, st.basis, passes=1)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(st.scale, jnp.abs(a) + b)
        broke = b <= tiny * scale

        def fresh(_):
            # A rolled copy of one random vector (an RNG call inside the loop triples compile time).
            r = orthogonalise(jnp.roll(restart, i), st.basis)
            return r / jnp.maximum(jnp.linalg.norm(r), jnp.finfo(dtype).tiny)   # 0 once the basis spans R^n

        nxt = jax.lax.cond(broke, fresh, lambda _: w / jnp.where(broke, 1.0, b), None)
        basis = st.basis.at[i + 1].set(nxt)
        alpha = st.alpha.at[i].set(a)
        beta = st.beta.at[i].set(jnp.where(broke, 0.0, b))
        bufs = st.aux if aux_like is None else jax.tree.map(lambda buf, x: buf.at[i].set(x), st.aux, aux)
        m = i + 1
        done = m >= M
        if check:
            theta, s = ritz(alpha, beta, m)
            res = jnp.abs(beta[i] * s[i, :k])
            ok = jnp.all(res <= tol * jnp.abs(theta[:k])) & (m >= lo) & ~broke
            done = done | ok
        return _State(m, basis, alpha, beta, bufs, scale, done)

    aux0 = None if aux_like is None else jax.tree.map(lambda a: jnp.zeros((M, *a.shape), a.dtype), aux_like)
    basis = jnp.zeros((M + 1, n), dtype).at[0].set(v / jnp.linalg.norm(v))
    init = _State(jnp.int32(0), basis, jnp.zeros(M, dtype), jnp.zeros(M, dtype), aux0, jnp.zeros([], dtype),
                  jnp.bool_(M == 0))
    return jax.lax.while_loop(lambda st: ~st.done, body, init)


def flat_start(key, params, v0):
    """The flat start vector [n]: ``v0`` (a pytree like params) or a standard normal draw from ``key``."""
    if v0 is None:
        return ravel_pytree(tree_random_normal(key, params))[0]
    return ravel_pytree(v0)[0].astype(ravel_pytree(params)[0].dtype)


def lanczos_adaptive(matvec: Callable, params: PyTree, key: jax.Array, *, k: int = 1, tol=1e-3,
                     max_iters: int = 40, min_iters: int = 1, v0: PyTree | None = None,
                     return_vectors: bool = False, has_aux: bool = False, return_basis: bool = False) -> Krylov:
    """Top-k eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation, stopped by residuals.

    matvec: pytree like params -> pytree like params (or -> (that, aux) with ``has_aux``: aux is stacked per step
      into ``Krylov.aux`` [max_iters, ...], e.g. the J v a joint linearisation gives for free).
    key: the cold start vector (when v0 is None) and the breakdown restarts. v0: a pytree like params (a warm
      start, e.g. the previous measurement's Ritz vectors summed). tol: relative Ritz residual bound (module
      docstring); may be traced; 0 runs max_iters steps. max_iters: the cap (m ≤ min(max_iters, n)); min_iters:
      the fewest steps accepted (≥ k always). return_basis: also the flat basis and the Ritz coefficients.
    Returns :class:`Krylov` (eigvals [k] descending, residuals [k], num_iters [], converged [], eigvecs pytree
    with a leading axis k when return_vectors).
    """
    flat, unravel = ravel_pytree(params)
    dtype = flat.dtype
    M = min(int(max_iters), flat.shape[0])
    if not 1 <= k <= M:
        raise ValueError(f"lanczos_adaptive: need 1 <= k={k} <= min(max_iters={max_iters}, n={flat.shape[0]})")
    aux_like = None
    if has_aux:
        aux_like = jax.eval_shape(lambda v: matvec(v)[1], params)

    def mv(x):
        out = matvec(unravel(x))
        w, aux = out if has_aux else (out, None)
        return ravel_pytree(w)[0].astype(dtype), aux

    key_start, key_restart = jax.random.split(key)
    st = run_lanczos(mv, flat_start(key_start, params, v0), M, key_restart, k=k, tol=tol, min_iters=min_iters,
                     aux_like=aux_like)
    theta, s = ritz(st.alpha, st.beta, st.i)
    last = s[jnp.maximum(st.i - 1, 0), :k]
    res = jnp.abs(st.beta[jnp.maximum(st.i - 1, 0)] * last)
    converged = jnp.all(res <= tol * jnp.abs(theta[:k])) if checks(tol) else jnp.bool_(False)
    vecs = None
    if return_vectors:
        flat_vecs = s[:, :k].T @ st.basis[:M]                                   # [k, n]
        flat_vecs = flat_vecs / jnp.linalg.norm(flat_vecs, axis=1, keepdims=True)
        vecs = jax.vmap(unravel)(flat_vecs)
    return Krylov(theta[:k], vecs, res, st.i, converged, st.aux,
                  st.basis if return_basis else None, s[:, :k] if return_basis else None)
