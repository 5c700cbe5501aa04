"""Learning-rate schedules as multipliers of the peak rate: ``lr(t) = optim.lr · m(t)`` with ``m ≤ 1``.

Conventions (t: 0-based step, T: train.steps, w: warmup_steps, e: end_factor):
  - warmup: ``m(t) = (t+1)/w`` for ``t < w`` — the first step is not wasted and step w−1 reaches the peak;
  - a decay runs over ``[w, T]`` with progress ``p = (t − w)/(T − w)``; it reaches ``e`` at ``t = T``, one
    past the last step, as optax's schedules do;
  - decay shapes ``f(p)`` go from 1 to 0 and are mixed as ``e + (1 − e)·f(p)``:
    linear ``1 − p``, cosine ``(1 + cos πp)/2``, one_minus_sqrt ``1 − √p`` (Hägele et al., 2024),
    rex ``(1 − p)/(1 − p/2)`` (Chen et al., 2022).
  - exponential ``e^p``; inv_sqrt ``sqrt(τ/(τ + t − w))`` (τ = timescale, or w: the Transformer's
    ``sqrt(w/t)``); wsd: warmup, stable at 1, then ``decay_shape`` over the last ``round(decay_fraction·T)``
    steps (Hu et al., 2024; Hägele et al., 2024); cyclic: ``num_cycles`` cycles of length T/num_cycles, each
    re-warming linearly from its floor (0 for the first cycle, e afterwards) and re-decaying with
    ``decay_shape`` (continual pre-training: Gupta et al., 2023; Ibrahim et al., 2024); refined: the recorded
    refinement over all of [0, T] (it replaces warmup and decay; warmup_steps is ignored): see refine.py.

Every number may be traced (jnp arithmetic only, no Python branches on values), so a sweep over warmup,
end factor or decay fraction is one compiled program. Schedules are registered by name in SCHEDULES.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from jaxlab.optim.numbers import ScheduleNumbers
from jaxlab.registry import registrar

Multiplier = Callable[[object], object]   # step -> m(step)

# ---------------------------------------------------------------------------------------------------- shapes

DECAY_SHAPES: dict[str, Callable] = {
    "linear": lambda p: 1.0 - p,
    "cosine": lambda p: 0.5 * (1.0 + jnp.cos(jnp.pi * p)),
    "one_minus_sqrt": lambda p: 1.0 - jnp.sqrt(p),
    "rex": lambda p: (1.0 - p) / (1.0 - 0.5 * p),
}


def progress(t, start, length):
    """Fraction of ``[start, start + length]`` covered at t, clipped to [0, 1]; length ≤ 0 counts as done."""
    return jnp.clip((t - start) / jnp.maximum(length, 1e-9), 0.0, 1.0)


def with_warmup(t, warmup, after, floor=0.0):
    """Linear ramp from ``floor`` to 1 over ``warmup`` steps ((t+1)/w of the way at step t), then ``after``."""
    ramp = floor + (1.0 - floor) * (t + 1.0) / jnp.maximum(warmup, 1.0)
    return jnp.where(t < warmup, ramp, after)


# ---------------------------------------------------------------------------------------------------- registry

# name -> fn(t, total_steps, p, cfg) -> multiplier. p: ScheduleNumbers (float32, possibly traced); cfg: the schedule
# ConfigDict, for structure (decay_shape) and for what is built on the Python side (refine's array).
SCHEDULES: dict[str, Callable] = {}


register_schedule = registrar(SCHEDULES)


@register_schedule("constant")
def constant(t, T, p, cfg):
    return with_warmup(t, p.warmup_steps, 1.0)


def _decay_to_end(shape: Callable):
    def schedule(t, T, p, cfg):
        w, e = p.warmup_steps, p.end_factor
        return with_warmup(t, w, e + (1.0 - e) * shape(progress(t, w, T - w)))

    return schedule


for _name, _shape in DECAY_SHAPES.items():
    register_schedule(_name)(_decay_to_end(_shape))


@register_schedule("exponential")
def exponential(t, T, p, cfg):
    w, e = p.warmup_steps, p.end_factor
    return with_warmup(t, w, e ** progress(t, w, T - w))


@register_schedule("inv_sqrt")
def inv_sqrt(t, T, p, cfg):
    w = p.warmup_steps
    tau = jnp.where(p.timescale > 0, p.timescale, w)
    return with_warmup(t, w, jnp.sqrt(tau / (tau + jnp.maximum(t - w, 0.0))))


@register_schedule("wsd")
def wsd(t, T, p, cfg):
    w, e = p.warmup_steps, p.end_factor
    decay_steps = jnp.round(p.decay_fraction * T)
    f = DECAY_SHAPES[cfg.decay_shape](progress(t, T - decay_steps, decay_steps))
    return with_warmup(t, w, e + (1.0 - e) * f)


@register_schedule("cyclic")
def cyclic(t, T, p, cfg):
    w, e = p.warmup_steps, p.end_factor
    length = T / p.num_cycles
    cycle = jnp.floor(t / length)
    tc = t - cycle * length                      # step within the cycle
    decay = e + (1.0 - e) * DECAY_SHAPES[cfg.decay_shape](progress(tc, w, length - w))
    return with_warmup(tc, w, decay, floor=jnp.where(cycle > 0, e, 0.0))


@register_schedule("refined")
def refined(t, T, p, cfg):
    from jaxlab.optim.refine import refined_multiplier_values  # numpy, built once per (file, width)

    values = jnp.asarray(refined_multiplier_values(cfg.refine_path, cfg.refine_width, cfg.refine_norm))
    # The refinement is the whole shape, warmup included (Defazio et al.: small early η where early gradients are
    # large), so warmup_steps is ignored — stacking a second warmup on it would cut the recorded curve.
    # The recorded run's step i sits at progress i/N of training, so a refinement transfers to another budget.
    index = progress(t, 0.0, T) * values.shape[0]
    return jnp.interp(index, jnp.arange(values.shape[0], dtype=jnp.float32), values)


# ---------------------------------------------------------------------------------------------------- build

def make_multiplier(schedule_cfg, total_steps: int, numbers: ScheduleNumbers) -> Multiplier:
    """step -> m(step) for ``schedule_cfg.name``; ``numbers``: the run's resolved schedule numbers
    (``jaxlab.optim.numbers.resolve(cfg).schedule``), possibly traced."""
    fn = SCHEDULES[schedule_cfg.name]
    p = ScheduleNumbers(*(jnp.asarray(v, jnp.float32) for v in numbers))

    def multiplier(step):
        return fn(jnp.asarray(step, jnp.float32), float(total_steps), p, schedule_cfg)

    return multiplier
