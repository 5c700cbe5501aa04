"""Zeroth-order (ZO) optimisers: a first-order optax transform applied to a two-point Gaussian gradient estimate.

Estimator (central two-point Gaussian smoothing; Nesterov & Spokoiny, 2017; MeZO, Malladi et al., 2023):

    g = (1/n) Σ_{i=1..n} [(L(θ + μ u_i) − L(θ − μ u_i)) / (2μ)] u_i,      u_i ~ N(0, I) independent.

We use the *central* difference: on a quadratic L(θ) = ½θᵀAθ + bᵀθ the difference quotient is exactly uᵀ∇L(θ)
(the even terms cancel), so E[g] = ∇L and Cov[g] = (1/n)(‖∇L‖² I + ∇L ∇Lᵀ) for every μ (the forward difference
would add the bias (μ/2)·E[(uᵀAu) u] = 0 in mean but inflate the variance by (μ/2)²·Var[uᵀAu]). Derivation:
E[u uᵀ a aᵀ u uᵀ] = 2aaᵀ + ‖a‖² I for Gaussian u (Isserlis), so one direction has covariance aaᵀ + ‖a‖² I.

Registered optimisers (OPTIMIZERS, names flagged in ZEROTH_ORDER):

    zo_sgd       sgd      on g     (ZO-GD when full batch)
    zo_momentum  momentum on g     (ZO-GDM: heavy ball, optim.momentum / optim.nesterov)
    zo_adam      adam     on g     (ZO-Adam: optim.b1, b2, eps)

The transform never sees loss values, so the trainer replaces ∇L by the estimate when ``is_zeroth_order(name)``:

    if is_zeroth_order(cfg.name):
        loss, grads = zo_value_and_grad(lambda p: loss_fn(p, batch), params, key, *zo_settings(cfg, hp))
    updates, opt_state = tx.update(grads, opt_state, params)

``optim.zo_directions`` (n, an int: structure, static) and ``optim.zo_mu`` (μ, traceable through hp).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.optim.bases import OPTIMIZERS, register_optimizer
from jaxlab.optim.defaults import resolve

PyTree = Any

# ZO name -> the first-order base method applied to the estimate.
ZEROTH_ORDER: dict[str, str] = {"zo_sgd": "sgd", "zo_momentum": "momentum", "zo_adam": "adam"}


def is_zeroth_order(name: str) -> bool:
    """True when optimiser ``name`` needs :func:`zo_gradient` in place of the true gradient."""
    return name in ZEROTH_ORDER


def _register(zo_name: str, base: str):
    register_optimizer(zo_name)(lambda cfg, p: OPTIMIZERS[base](cfg, p))


for _zo, _base in ZEROTH_ORDER.items():
    _register(_zo, _base)


def zo_gradient(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, num_directions: int,
                mu) -> PyTree:
    """The central two-point Gaussian estimate g of ∇L(params): a pytree like params.

    loss_fn: params -> scalar. num_directions: n (Python int; 2n loss evaluations, run sequentially so memory is
    one forward pass). mu: smoothing radius μ > 0, may be traced. Jittable and vmappable (over key, mu, params).
    """
    flat, unravel = ravel_pytree(params)

    def body(acc, i):
        u = jax.random.normal(jax.random.fold_in(key, i), flat.shape, flat.dtype)
        c = (loss_fn(unravel(flat + mu * u)) - loss_fn(unravel(flat - mu * u))) / (2.0 * mu)
        return acc + c.astype(flat.dtype) * u, None   # u regenerated, never stored: O(d) memory (MeZO's trick)

    total, _ = jax.lax.scan(body, jnp.zeros_like(flat), jnp.arange(int(num_directions)))
    return unravel(total / num_directions)


def zo_value_and_grad(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array,
                      num_directions: int, mu) -> tuple[jax.Array, PyTree]:
    """(L(params), zo_gradient(...)): the exact loss for logging (one more forward pass) and the estimate."""
    return loss_fn(params), zo_gradient(loss_fn, params, key, num_directions, mu)


def zo_settings(cfg, hp=None) -> tuple[int, Any]:
    """(num_directions, mu) for the optim config ``cfg``; mu from hp["zo_mu"] when swept (possibly traced)."""
    return int(cfg.zo_directions), resolve(cfg, hp)["zo_mu"]
