"""Optimiser and schedule from the ``optim`` config section (plus traced overrides ``hp``).

    tx = make_optimizer(config.optim, total_steps, hp)     # optax.GradientTransformation
    lr = make_schedule(config.optim, total_steps, hp)      # step -> learning rate (peak lr · multiplier)

The chain is ``clip → weight-decay variant(direction of the base method, lr schedule) → [parameter EMA]``;
names pick entries of the registries OPTIMIZERS (bases.py), WEIGHT_DECAY (weight_decay.py) and SCHEDULES
(schedules.py). Every number comes from :func:`jaxlab.optim.defaults.resolve`, so anything in ``hp`` may be a
traced value and ``jax.vmap`` over hp compiles once.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxlab.optim.bases import OPTIMIZERS
from jaxlab.optim.defaults import resolve
from jaxlab.optim.dynamics import GRADIENTS, Step, declaration, exact_gradient
from jaxlab.optim.ema import with_param_ema
from jaxlab.optim.schedules import make_multiplier
from jaxlab.optim.weight_decay import WEIGHT_DECAY, decay_mask


def make_schedule(cfg, total_steps: int, hp=None):
    """step -> lr_t = lr · s_t (the actual learning rate of step t)."""
    p = resolve(cfg, hp)
    multiplier = make_multiplier(cfg.schedule, total_steps, p)
    lr = p["lr"]
    return lambda step: lr * multiplier(step)


def clip_by_global_norm(max_norm) -> optax.GradientTransformation:
    """Scale the gradient to global norm ≤ max_norm; max_norm ≤ 0 (possibly traced) leaves it unchanged."""

    def update(updates, state, params=None):
        del params
        norm = optax.tree.norm(updates)
        scale = jnp.where((max_norm > 0) & (norm > max_norm), max_norm / jnp.maximum(norm, 1e-30), 1.0)
        return jax.tree.map(lambda g: (g * scale).astype(g.dtype), updates), state

    return optax.GradientTransformation(optax.init_empty_state, update)


def make_optimizer(cfg, total_steps: int, hp=None, direction=None) -> optax.GradientTransformation:
    """The optax transform for ``cfg`` (validated by :func:`check_optim`); numbers in ``hp`` take precedence.
    direction: a transform to use in place of the base method's (the frozen-preconditioner form of a Step)."""
    hp = dict(hp or {})
    p = resolve(cfg, hp)
    multiplier = make_multiplier(cfg.schedule, total_steps, p)
    lr = lambda step: p["lr"] * multiplier(step)  # noqa: E731
    direction = OPTIMIZERS[cfg.name](cfg, p) if direction is None else direction
    tx = WEIGHT_DECAY[cfg.wd_variant](direction, lr, multiplier, p["weight_decay"], decay_mask(cfg.wd_mask))
    # A field that hp may set is kept in the structure whenever hp carries it, so one program serves every value.
    if cfg.grad_clip > 0 or "grad_clip" in hp:
        tx = optax.chain(clip_by_global_norm(p["grad_clip"]), tx)
    if cfg.ema > 0 or "ema" in hp:
        tx = with_param_ema(tx, p["ema"])
    return tx


def make_step(cfg, total_steps: int, hp=None) -> Step:
    """One real step of ``cfg``'s optimiser as functions (:class:`jaxlab.optim.dynamics.Step`), numbers from
    ``hp`` (possibly traced): its update, the gradient it uses, and its frozen-preconditioner form if declared."""
    p = resolve(cfg, hp)
    grad_fn = GRADIENTS.get(cfg.name)
    frozen_direction = declaration(cfg).frozen

    def frozen(P):
        return make_optimizer(cfg, total_steps, hp, direction=frozen_direction(cfg, p, P)).update

    return Step(update=make_optimizer(cfg, total_steps, hp).update,
                gradient=exact_gradient if grad_fn is None else grad_fn(cfg, p),
                frozen_update=None if frozen_direction is None else frozen)
