"""Preconditioned sharpness for Adam-family optimisers (Cohen et al., 2022, "Adaptive gradient methods at the
edge of stability"): the top eigenvalue of P^{-1/2} H P^{-1/2} with P = diag(√v̂ + ε) the preconditioner of the
last update, compared with the threshold (2 + 2β₁)/((1 − β₁)·η) (= 38/η at β₁ = 0.9).

    P = adam_preconditioner(opt_state, b2=0.999, eps=1e-8)     # pytree like params
    vals, vecs = preconditioned_sharpness(make_hvp(loss_fn, params, batch), params, P, key, num_iters=20)
    vals[0] / adam_threshold(lr, b1=0.9)
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxlab.curvature.lanczos import lanczos


def find_adam_state(opt_state) -> optax.ScaleByAdamState:
    """The one ``optax.ScaleByAdamState`` inside ``opt_state``, however nested (chains, masks, weight-decay
    variants, jaxlab's ParamEmaState, inject_hyperparams)."""
    is_adam = lambda s: isinstance(s, optax.ScaleByAdamState)  # noqa: E731
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=is_adam) if is_adam(s)]
    if len(found) != 1:
        raise ValueError(f"adam_preconditioner: expected one optax.ScaleByAdamState (adam/adamw) in the optimiser "
                         f"state, found {len(found)}; preconditioned sharpness needs Adam's second moment")
    return found[0]


def adam_preconditioner(opt_state, b2: float = 0.999, eps: float = 1e-8, step=None, eps_root: float = 0.0):
    """P = √v̂ + ε, v̂ = ν/(1 − β₂^t) with t = ``step`` or the state's count (updates applied so far); a pytree like
    params. This is exactly the denominator of the last Adam update. Before any update (t = 0) P = ε + √eps_root."""
    state = find_adam_state(opt_state)
    t = state.count if step is None else step

    def precond(nu):
        correction = 1.0 - jnp.asarray(b2, nu.dtype) ** jnp.asarray(t, nu.dtype)
        nu_hat = nu / jnp.maximum(correction, jnp.finfo(nu.dtype).tiny)   # t = 0: ν = 0, so v̂ = 0
        return (jnp.sqrt(nu_hat + eps_root) + eps).astype(nu.dtype)

    return jax.tree.map(precond, state.nu)


def preconditioned_matvec(matvec: Callable, P) -> Callable:
    """v -> P^{-1/2} H P^{-1/2} v (P: positive pytree like params, diagonal). Same spectrum as P^{-1} H, the
    operator that governs the stability of preconditioned GD."""
    inv_sqrt = jax.tree.map(lambda p: 1.0 / jnp.sqrt(p), P)
    scale = lambda v: jax.tree.map(lambda a, s: (a * s).astype(a.dtype), v, inv_sqrt)  # noqa: E731
    return lambda v: scale(matvec(scale(v)))


def preconditioned_sharpness(matvec: Callable, params, P, key: jax.Array, num_iters: int, k: int = 1, **kwargs):
    """Top-k eigenvalues of P^{-1/2} H P^{-1/2} by :func:`lanczos` (kwargs go to it); returns lanczos' tuple.
    An eigenvector w of this operator corresponds to the direction P^{-1/2} w in parameter space."""
    return lanczos(preconditioned_matvec(matvec, P), params, key, num_iters, k=k, **kwargs)


def adam_threshold(lr, b1: float = 0.9):
    """Stability threshold of Adam's preconditioned sharpness, (2 + 2β₁)/((1 − β₁)·η) (38/η at β₁ = 0.9)."""
    return (2.0 + 2.0 * b1) / ((1.0 - b1) * lr)
