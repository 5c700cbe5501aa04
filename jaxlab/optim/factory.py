"""Optimiser and schedule from the ``optim`` config section and the run's numbers.

    n = resolve(config.optim, hp)                          # jaxlab.optim.numbers: the run's numbers, once
    tx = make_optimizer(config.optim, total_steps, n)      # optax.GradientTransformation
    lr = make_schedule(config.optim, total_steps, n)       # step -> learning rate (peak lr · multiplier)
    step = make_step(config.optim, total_steps, n)         # the real step: update, its gradient, a frozen form

The chain is ``clip → weight-decay variant(direction of the base method, lr schedule) → [parameter EMA]``;
names pick entries of the registries OPTIMIZERS (bases.py), WEIGHT_DECAY (weight_decay.py) and SCHEDULES
(schedules.py). ``numbers`` (:class:`jaxlab.optim.numbers.Numbers`) may hold traced values, so ``jax.vmap`` over
them compiles once; a field left None (or numbers None) takes the config's value.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxlab.optim.bases import OPTIMIZERS
from jaxlab.optim.dynamics import GRADIENTS, Step, declaration, exact_gradient
from jaxlab.optim.ema import with_param_ema
from jaxlab.optim.numbers import Numbers, resolve
from jaxlab.optim.schedules import make_multiplier
from jaxlab.optim.weight_decay import WEIGHT_DECAY, decay_mask


def _lr_and_multiplier(cfg, total_steps: int, p: Numbers):
    """(step -> lr_t = lr · s_t, step -> s_t): the learning rate of step t and its schedule multiplier."""
    multiplier = make_multiplier(cfg.schedule, total_steps, p.schedule)
    return (lambda step: p.lr * multiplier(step)), multiplier


def make_schedule(cfg, total_steps: int, numbers: Numbers | None = None):
    """step -> lr_t = lr · s_t (the actual learning rate of step t)."""
    return _lr_and_multiplier(cfg, total_steps, resolve(cfg, numbers))[0]


def clip_by_global_norm(max_norm) -> optax.GradientTransformation:
    """Scale the gradient to global norm ≤ max_norm; max_norm ≤ 0 (possibly traced) leaves it unchanged."""

    def update(updates, state, params=None):
        del params
        norm = optax.tree.norm(updates)
        scale = jnp.where((max_norm > 0) & (norm > max_norm), max_norm / jnp.maximum(norm, 1e-30), 1.0)
        return jax.tree.map(lambda g: (g * scale).astype(g.dtype), updates), state

    return optax.GradientTransformation(optax.init_empty_state, update)


def _traced(x) -> bool:
    """A number that arrives as an array (a sweep's value): the structure that serves every value is kept."""
    return not isinstance(x, (int, float))


def make_optimizer(cfg, total_steps: int, numbers: Numbers | None = None, direction=None
                   ) -> optax.GradientTransformation:
    """The optax transform for ``cfg`` (validated by :func:`check_optim`) at ``numbers``.
    direction: a transform to use in place of the base method's (the frozen-preconditioner form of a Step)."""
    p = resolve(cfg, numbers)
    lr, multiplier = _lr_and_multiplier(cfg, total_steps, p)
    direction = OPTIMIZERS[cfg.name](cfg, p) if direction is None else direction
    tx = WEIGHT_DECAY[cfg.wd_variant](direction, lr, multiplier, p.weight_decay, decay_mask(cfg.wd_mask))
    # A traced clip or EMA keeps its transform whatever its value, so one program serves every value.
    if _traced(p.grad_clip) or p.grad_clip > 0:
        tx = optax.chain(clip_by_global_norm(p.grad_clip), tx)
    if _traced(p.ema) or p.ema > 0:
        tx = with_param_ema(tx, p.ema)
    return tx


def make_step(cfg, total_steps: int, numbers: Numbers | None = None) -> Step:
    """One real step of ``cfg``'s optimiser as functions (:class:`jaxlab.optim.dynamics.Step`) at ``numbers``
    (possibly traced): its update, the gradient it uses, and its frozen-preconditioner form if declared."""
    p = resolve(cfg, numbers)
    grad_fn = GRADIENTS.get(cfg.name)
    frozen_direction = declaration(cfg).frozen

    def frozen(P):
        return make_optimizer(cfg, total_steps, p, direction=frozen_direction(cfg, p, P)).update

    return Step(update=make_optimizer(cfg, total_steps, p).update,
                gradient=exact_gradient if grad_fn is None else grad_fn(cfg, p),
                frozen_update=None if frozen_direction is None else frozen)
