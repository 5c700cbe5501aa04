"""Registries by name: a dict from a config name to a function (or class), filled by a decorator.

    OPTIMIZERS = {}
    register_optimizer = registrar(OPTIMIZERS)

    @register_optimizer("sgd")
    def sgd(cfg, p): ...

    QUANTITIES = {}
    register_quantity = registrar(QUANTITIES, Quantity)    # entries built as Quantity(fn, **fields)

    @register_quantity("trace", needs_trace=True)
    def _trace(ctx): ...

    fn = lookup(OPTIMIZERS, "optim.name", config.optim.name)  # ConfigError naming the choices for an unknown name

Every registry of jaxlab has this one form: models, losses, datasets, optimisers (and their dynamics, weight-decay
variants, schedules), attention kinds and curvature quantities. Registering from anywhere (a test file, a notebook)
before the config is built adds a choice; nothing else needs editing.
"""
from __future__ import annotations

from typing import Any, Callable

from jaxlab.config import require_choice


def registrar(table: dict, entry: Callable[..., Any] | None = None) -> Callable[..., Callable]:
    """``register(name, **fields)``: a decorator that stores its function (or class) in ``table`` under ``name``,
    as is, or as ``entry(fn, **fields)`` (a NamedTuple of the function and what it declares)."""
    def register(name: str, **fields):
        def deco(fn):
            table[name] = fn if entry is None else entry(fn, **fields)
            return fn
        return deco
    return register


def lookup(table: dict, key: str, name: str):
    """``table[name]``; an unknown name is a ConfigError (a ValueError) on config ``key`` naming the choices."""
    require_choice(key, name, table)
    return table[name]
