"""Arnoldi iteration for a non-symmetric linear operator on flat vectors: Ritz values and their residuals.

    basis, H = arnoldi(mv, v, m, key)          # basis [m+1, n] orthonormal rows, H [m+1, m] upper Hessenberg
    z, res = ritz(H)                          # Ritz values [m] (complex) and residual bounds [m]

The Ritz values of H[:m] approximate the exterior of the operator's spectrum first. Every shift and scale of the
operator (I − J)/2 has the same Krylov space, so running on J itself finds the same Ritz values as running on the
flip end's dominant form (I − J)/2, whose largest eigenvalue is 1 when J has an eigenvalue at −1.
One ``lax.fori_loop`` (jittable, vmappable); the small m × m eigenproblem uses ``jnp.linalg.eig``, which XLA
implements on CPU and GPU (on GPU through LAPACK on the host), not on TPU.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature import linalg


def arnoldi(mv: Callable[[jax.Array], jax.Array], v: jax.Array, m: int, key: jax.Array):
    """m Arnoldi steps of ``mv`` ([n] -> [n]) from v [n] (normalised here), classical Gram–Schmidt applied twice.

    Returns (basis [m+1, n], H [m+1, m]) with mv(basis[:m].T) = basis.T @ H. On breakdown (the Krylov space is
    invariant: its Ritz values are exact eigenvalues) H's subdiagonal entry is 0 and the iteration continues from a
    random vector (from ``key``) orthogonal to the basis.
    """
    n, dtype = v.shape[0], v.dtype
    v = v / jnp.linalg.norm(v)
    tiny = jnp.finfo(dtype).eps ** 0.75
    restart = jax.random.normal(key, (n,), dtype)

    def orth(w, basis):
        c1 = basis @ w                      # rows not yet filled are zero: one product serves every step
        w = w - basis.T @ c1
        c2 = basis @ w
        return w - basis.T @ c2, c1 + c2

    def body(i, carry):
        basis, H, scale = carry
        w, coeff = orth(mv(basis[i]), basis)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.linalg.norm(coeff) + b)
        broke = b <= tiny * scale

        def fresh(_):
            r, _ = orth(jnp.roll(restart, i), basis)
            return r / jnp.maximum(jnp.linalg.norm(r), jnp.finfo(dtype).tiny)

        nxt = jax.lax.cond(broke, fresh, lambda _: w / jnp.where(broke, 1.0, b), None)
        H = H.at[:, i].set(coeff.at[i + 1].set(jnp.where(broke, 0.0, b)))
        return basis.at[i + 1].set(nxt), H, scale

    basis = jnp.zeros((m + 1, n), dtype).at[0].set(v)
    basis, H, _ = jax.lax.fori_loop(0, m, body, (basis, jnp.zeros((m + 1, m), dtype), jnp.zeros([], dtype)))
    return basis, H


def ritz(H: jax.Array):
    """Ritz values z [m] (complex) of the Hessenberg H [m+1, m] and their residual bounds [m] ‖A y − z y‖ =
    |h_{m+1,m}| · |last entry of the unit Ritz vector|."""
    m = H.shape[1]
    z, s = linalg.eig(H[:m])
    s = s / jnp.linalg.norm(s, axis=0, keepdims=True)
    return z, jnp.abs(H[m, m - 1]) * jnp.abs(s[m - 1])


def leftmost(H: jax.Array):
    """(real part, |imaginary part|, residual) of the Ritz value with the smallest real part."""
    z, res = ritz(H)
    i = jnp.argmin(jnp.real(z))
    return jnp.real(z[i]), jnp.abs(jnp.imag(z[i])), res[i]
