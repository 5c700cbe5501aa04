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

The transform never sees loss values, so each registers its estimator as the gradient of its Step
(``register_gradient``): the trainer and the step map call ``make_step(cfg, steps, numbers).gradient(loss_fn, params,
key)`` and get ∇L or this estimate alike. Each also declares its dynamics (``register_dynamics``): its stability
is mean-square, of the per-mode recurrence in jaxlab.optim.zo_modes, with threshold 2/η on the effective sharpness
2/η* (jaxlab.curvature.zo_stability); zo_adam's is that of Adam with its preconditioner frozen.

``optim.zo_directions`` (n, an int: structure, static) and ``optim.zo_mu`` (μ, a traceable field of the run's Numbers).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.optim.bases import OPTIMIZERS, register_optimizer
from jaxlab.optim.dynamics import Declared, register_dynamics, register_gradient
from jaxlab.optim.preconditioners import adam_preconditioner, frozen_adam
from jaxlab.optim.zo_modes import adam_frozen_modes, heavy_ball_modes, nesterov_modes, sgd_modes

PyTree = Any

# ZO name -> the first-order base method applied to the estimate.
ZEROTH_ORDER: dict[str, str] = {"zo_sgd": "sgd", "zo_momentum": "momentum", "zo_adam": "adam"}


def is_zeroth_order(name: str) -> bool:
    """True when optimiser ``name`` needs :func:`zo_gradient` in place of the true gradient."""
    return name in ZEROTH_ORDER


def _estimator(cfg, p):
    """The Step's gradient: (loss_fn, params, key) -> the two-point estimate with n = optim.zo_directions."""
    n, mu = int(cfg.zo_directions), p.zo_mu
    return lambda loss_fn, params, key: zo_gradient(loss_fn, params, key, n, mu)


def _register(zo_name: str, base: str):
    register_optimizer(zo_name)(lambda cfg, p: OPTIMIZERS[base](cfg, p))
    register_gradient(zo_name)(_estimator)


for _zo, _base in ZEROTH_ORDER.items():
    _register(_zo, _base)


def _zo_threshold(numbers):
    return 2.0 / numbers.lr     # on 2/η*: the step is mean-square stable while η < η*


@register_dynamics("zo_sgd")
def _zo_sgd_dynamics(cfg):
    return Declared(threshold=_zo_threshold, operator="zo_mean_square", zeroth_order=True, mode_map=sgd_modes)


@register_dynamics("zo_momentum")
def _zo_momentum_dynamics(cfg):
    modes = nesterov_modes if cfg.nesterov else heavy_ball_modes
    return Declared(threshold=_zo_threshold, operator="zo_mean_square", zeroth_order=True, mode_map=modes)


@register_dynamics("zo_adam")
def _zo_adam_dynamics(cfg):
    return Declared(threshold=_zo_threshold, operator="zo_mean_square", zeroth_order=True,
                    mode_map=adam_frozen_modes,
                    preconditioner=lambda state, g, n: adam_preconditioner(state, g, n.b1, n.b2, n.eps),
                    frozen=lambda cfg, p, P: frozen_adam(p.b1, P))


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

