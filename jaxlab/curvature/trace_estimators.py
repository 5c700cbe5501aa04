"""Trace estimators that spend a fixed number of operator products, each with a standard error.

    tr, se = hutchinson(matvec, params, key, 30)               # Girard–Hutchinson (spectrum.hutchinson_trace)
    tr, se = hutchpp(matvec, params, key, num_matvecs=30)      # Hutch++ (Meyer, Musco, Musco & Woodruff, 2021)
    tr, se = xtrace(matvec, params, key, num_matvecs=30)       # XTrace (Epperly, Tropp & Webber, 2024)

matvec: a symmetric operator on pytrees like ``params`` (the Hessian, the GGN, ...). Products are applied one
at a time (``lax.map``), so memory is a few [s, n] blocks (s ≤ num_matvecs/2, n = parameter count).

Hutchinson: mean of zᵀAz over m Rademacher z; variance 2Σ_{i≠j}A_ij²/m, large when a few eigenvalues dominate.
Hutch++ (s = ⌊m/3⌋): Q = orth(A S) for s Rademacher columns S; tr(QᵀAQ) exactly, plus Hutchinson with s probes G on
  the deflated (I − QQᵀ)A(I − QQᵀ). The standard error is that of the deflated part (the sketch has none given Q).
XTrace (s = ⌊m/2⌋ Rademacher ω_i, Y = AΩ): for each i, Q_i = orth(Y without column i) and
  t_i = tr(Q_iᵀAQ_i) + ω_iᵀ(I − Q_iQ_iᵀ)A(I − Q_iQ_iᵀ)ω_i, each unbiased; the estimate is mean_i t_i and the
  standard error std(t_i)/√s (the paper's error estimate). With Q, R = qr(Y), Q_iQ_iᵀ = Q(I − s_is_iᵀ)Qᵀ, s_i the
  i-th column of R⁻ᵀ normalised, so every t_i comes from Y, Q and AQ (2s products in all).
For a spectrum with k ≪ s large eigenvalues both sketches capture them, and the error of what is left is that
of the small eigenvalues only (tested against Hutchinson at equal products over many seeds).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import linalg
from jaxlab.curvature.spectrum import hutchinson_trace as hutchinson  # the same interface

__all__ = ["hutchinson", "hutchpp", "xtrace"]


def _flat(matvec: Callable, params):
    flat, unravel = ravel_pytree(params)
    return flat, lambda x: ravel_pytree(matvec(unravel(x)))[0].astype(flat.dtype)


def _apply(mv: Callable, X: jax.Array) -> jax.Array:
    """A applied to each row of X [s, n] -> [s, n], one product at a time."""
    return jax.lax.map(mv, X)


def _blocks(name: str, matvec: Callable, params, num_matvecs: int, parts: int):
    """(s = num_matvecs // parts ≥ 2, flat operator, n, dtype)."""
    s = num_matvecs // parts
    if s < 2:
        raise ValueError(f"{name}: num_matvecs={num_matvecs}: need >= {2 * parts} ({parts} blocks of >= 2)")
    flat, mv = _flat(matvec, params)
    return s, mv, flat.shape[0], flat.dtype


def _probes(key, s: int, n: int, dtype):
    return jax.random.rademacher(key, (s, n), dtype)


def hutchpp(matvec: Callable, params, key: jax.Array, num_matvecs: int):
    """Hutch++ with s = num_matvecs // 3 ≥ 2 sketch and probe vectors; returns (estimate [], standard error [])."""
    s, mv, n, dtype = _blocks("hutchpp", matvec, params, num_matvecs, 3)
    k_s, k_g = jax.random.split(key)
    Q, _ = linalg.qr(_apply(mv, _probes(k_s, s, n, dtype)).T)               # [n, s]
    exact = jnp.sum(Q * _apply(mv, Q.T).T)                                        # tr(Qᵀ A Q)
    G = _probes(k_g, s, n, dtype)
    G = G - (G @ Q) @ Q.T                                                         # (I − QQᵀ) g, rows
    t = jnp.sum(G * _apply(mv, G), axis=1)                                        # g ⊥ Q: gᵀ(I−QQᵀ)A(I−QQᵀ)g
    return exact + jnp.mean(t), jnp.std(t, ddof=1) / jnp.sqrt(s)


def _upper_inverse(R: jax.Array) -> jax.Array:
    """R⁻¹ of an upper-triangular R [s, s] by back substitution, row by row (s small). Elementwise and GEMV only:
    a LAPACK solve here hung XLA:CPU under a 400-wide vmap (measured while building this)."""
    s = R.shape[0]
    eye = jnp.eye(s, dtype=R.dtype)
    X = jnp.zeros_like(R)
    for i in range(s - 1, -1, -1):      # rows below i are done; R[i, :i] = 0 and X[:i] = 0 still
        X = X.at[i].set((eye[i] - R[i] @ X) / R[i, i])
    return X


def xtrace(matvec: Callable, params, key: jax.Array, num_matvecs: int):
    """XTrace with s = num_matvecs // 2 ≥ 2 test vectors; returns (estimate [], standard error [])."""
    s, mv, n, dtype = _blocks("xtrace", matvec, params, num_matvecs, 2)
    Om = _probes(key, s, n, dtype)                       # [s, n]: rows ω_i
    Y = _apply(mv, Om)                                   # [s, n]: rows A ω_i
    Q, R = linalg.qr(Y.T)                            # [n, s], [s, s]
    Z = _apply(mv, Q.T).T                                # A Q [n, s]
    H = Q.T @ Z                                          # [s, s]
    S = _upper_inverse(R).T                              # columns: R⁻ᵀ
    S = S / jnp.linalg.norm(S, axis=0, keepdims=True)
    sketch = jnp.trace(H) - jnp.einsum("ji,jk,ki->i", S, H, S)                   # tr(Q_iᵀ A Q_i) [s]
    C = Q.T @ Om.T                                       # [s, s]: column i = Qᵀω_i
    D = C - S * jnp.sum(S * C, axis=0, keepdims=True)    # column i = (I − s_is_iᵀ)Qᵀω_i
    A_res = Y.T - Z @ D                                  # column i = A(I − Q_iQ_iᵀ)ω_i
    P_om = Om.T - Q @ D                                  # column i = (I − Q_iQ_iᵀ)ω_i
    t = sketch + jnp.sum(P_om * A_res, axis=0)
    return jnp.mean(t), jnp.std(t, ddof=1) / jnp.sqrt(s)
