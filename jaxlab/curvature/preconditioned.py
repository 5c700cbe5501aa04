"""Preconditioned sharpness: the top eigenvalue of P^{-1/2} H P^{-1/2} (the spectrum of P⁻¹H) for a positive
diagonal preconditioner P, the operator whose top eigenvalue bounds the stability of a preconditioned step
(Cohen et al., 2022, "Adaptive gradient methods at the edge of stability"). Which P a step applies is the
optimiser's to declare (jaxlab.optim.dynamics: Adam's is in jaxlab.optim.preconditioners).

    vals, vecs = preconditioned_sharpness(make_hvp(loss_fn, params, batch), params, P, key, num_iters=20)
"""
from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp

from jaxlab.curvature.lanczos import lanczos


def preconditioned_matvec(matvec: Callable, P) -> Callable:
    """v -> P^{-1/2} H P^{-1/2} v (P: positive pytree like params, diagonal). Same spectrum as P^{-1} H, the
    operator that governs the stability of preconditioned GD."""
    inv_sqrt = jax.tree.map(lambda p: 1.0 / jnp.sqrt(p), P)

    def scale(v):
        chex.assert_trees_all_equal_shapes(v, inv_sqrt)  # P must be laid out like the vectors (like params)
        return jax.tree.map(lambda a, s: (a * s).astype(a.dtype), v, inv_sqrt)

    return lambda v: scale(matvec(scale(v)))


def preconditioned_sharpness(matvec: Callable, params, P, key: jax.Array, num_iters: int, k: int = 1, **kwargs):
    """Top-k eigenvalues of P^{-1/2} H P^{-1/2} by :func:`lanczos` (kwargs go to it); returns lanczos' tuple.
    An eigenvector w of this operator corresponds to the direction P^{-1/2} w in parameter space."""
    return lanczos(preconditioned_matvec(matvec, P), params, key, num_iters, k=k, **kwargs)
