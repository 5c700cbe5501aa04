"""A run's optimiser numbers as one typed structure, keyed by the ``optim`` section's own field names.

    hp = traced_numbers(config.optim)                # Numbers(lr=float32, weight_decay=float32, others None)
    n = resolve(config.optim, hp)                    # every field: hp's (possibly traced) value, else the config's
    n.lr, n.b1, n.schedule.warmup_steps              # what transforms, thresholds and preconditioners read

``hp`` is the traced part: the fields a sweep may vary arrive as arguments of the jitted trainer (a leaf per
field, ``None`` where the config's Python number is used), so ``jax.vmap`` over hp is one compiled program and
the structure of hp (which fields are set) decides which numbers are traced. :func:`resolve` is the one place a
config and hp become the numbers of a run; everything downstream (``make_optimizer``, ``make_schedule``,
``make_step``, the declared dynamics, the curvature tracker) reads the resolved :class:`Numbers`.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np

from jaxlab.config import ConfigError


class ScheduleNumbers(NamedTuple):
    """The numbers of ``optim.schedule`` (its names and shapes are structure; see jaxlab.optim.schedules)."""
    warmup_steps: Any = None
    end_factor: Any = None
    decay_fraction: Any = None
    timescale: Any = None
    num_cycles: Any = None


class Numbers(NamedTuple):
    """Every number of the ``optim`` section a sweep may trace, by field name; ``None``: not given (in hp: taken
    from the config). ``optim.zo_directions`` (a loop length) and ``schedule.refine_width`` (an array's size)
    shape the program, so they stay in the config."""
    lr: Any = None
    momentum: Any = None
    b1: Any = None
    b2: Any = None
    lion_b2: Any = None
    eps: Any = None
    weight_decay: Any = None
    grad_clip: Any = None
    ema: Any = None
    zo_mu: Any = None
    schedule: ScheduleNumbers = ScheduleNumbers()


# Field names as the optim section spells them: "lr", ..., "schedule.warmup_steps", ...
FIELDS: tuple[str, ...] = tuple(f for f in Numbers._fields if f != "schedule") + tuple(
    f"schedule.{f}" for f in ScheduleNumbers._fields)
TRACED_BY_DEFAULT = ("lr", "weight_decay")   # traced in every run, so any grid over them shares one program


def from_fields(values: Mapping[str, Any]) -> Numbers:
    """{"lr": 0.1, "schedule.warmup_steps": 10, ...} -> Numbers (None elsewhere); ConfigError on an unknown name."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{unknown} are not numeric optim fields; choose from {list(FIELDS)}")
    top = {k: v for k, v in values.items() if "." not in k}
    sched = {k.split(".", 1)[1]: v for k, v in values.items() if "." in k}
    return Numbers(**top, schedule=ScheduleNumbers(**sched))


def to_fields(numbers: Numbers) -> dict[str, Any]:
    """The inverse of :func:`from_fields`: {field name: value} of the fields that are not None."""
    out = {k: v for k, v in numbers._asdict().items() if k != "schedule" and v is not None}
    out.update({f"schedule.{k}": v for k, v in numbers.schedule._asdict().items() if v is not None})
    return out


def _given(values) -> Numbers:
    if values is None:
        return Numbers()
    return values if isinstance(values, Numbers) else from_fields(values)


def resolve(cfg, values: Numbers | Mapping[str, Any] | None = None) -> Numbers:
    """The run's numbers: each field from ``values`` (Numbers or {field name: value}; possibly traced) where given,
    else from ``cfg`` (the optim section). Already resolved numbers come back unchanged."""
    given = _given(values)
    top = {f: cfg[f] if getattr(given, f) is None else getattr(given, f) for f in Numbers._fields if f != "schedule"}
    sched = {f: cfg.schedule[f] if getattr(given.schedule, f) is None else getattr(given.schedule, f)
             for f in ScheduleNumbers._fields}
    return Numbers(**top, schedule=ScheduleNumbers(**sched))


def traced_numbers(cfg, values: Numbers | Mapping[str, Any] | None = None, dtype=np.float32) -> Numbers:
    """The traced part of a run's numbers: TRACED_BY_DEFAULT from ``cfg`` plus every field ``values`` gives, as
    ``dtype`` scalars (None: Python floats), None elsewhere. What the trainer's ``init / advance / measure``
    take as ``hp``."""
    given = to_fields(_given(values))
    full = to_fields(resolve(cfg))
    chosen = {k: float(given.get(k, full[k])) for k in (*TRACED_BY_DEFAULT, *given)}
    return from_fields({k: v if dtype is None else np.asarray(v, dtype) for k, v in chosen.items()})
