"""Registries by name: a dict from a config name to a function (or class), filled by a decorator.

    OPTIMIZERS = {}
    register_optimizer = registrar(OPTIMIZERS)

    @register_optimizer("sgd")
    def sgd(cfg, p): ...

An unknown name is the config check's business (``jaxlab.config.require_choice`` names the choices).
"""
from __future__ import annotations

from typing import Callable


def registrar(table: dict) -> Callable[[str], Callable]:
    """``register(name)``: a decorator that stores its function (or class) in ``table`` under ``name``."""
    def register(name: str):
        def deco(fn):
            table[name] = fn
            return fn
        return deco
    return register
