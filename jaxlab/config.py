"""Config errors and config-path helpers; the floor every section's checks stand on (imports no jaxlab module).

Each ingredient owns its section: ``default_config()`` and ``check(config)`` in that ingredient's package
(``jaxlab.data``, ``jaxlab.models``, ``jaxlab.losses``, ``jaxlab.optim``, ``jaxlab.curvature.tracker``,
``jaxlab.checkpoint``). :mod:`jaxlab.schema` puts the sections together (``base_config``) and runs the checks
in a fixed order (``validate``). Unknown keys and wrong types are rejected by ml_collections itself: configs are
locked ConfigDicts built from ``base_config()``.
"""
from __future__ import annotations

import difflib
import math
from typing import Any

import ml_collections

ConfigDict = ml_collections.ConfigDict


class ConfigError(ValueError):
    """A config key or value is invalid; the message names the key."""


def fail(key: str, value: Any, why: str):
    raise ConfigError(f"config.{key}={value!r}: {why}")


def require(cond: bool, key: str, value: Any, why: str):
    if not cond:
        fail(key, value, why)


def require_choice(key: str, value: Any, choices):
    if value not in choices:
        hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        fail(key, value, f"must be one of {sorted(choices)}{extra}")


def lookup(config: ConfigDict, path: str) -> tuple[bool, Any]:
    """(True, config["a"]["b"]) for "a.b"; (False, a hint naming a close match such as " (did you mean train?)",
    or "") when the path names no key."""
    node, done = config, []
    for part in path.split("."):
        if not isinstance(node, (ConfigDict, dict)) or part not in node:
            options = list(node.keys()) if isinstance(node, (ConfigDict, dict)) else []
            hint = difflib.get_close_matches(part, options, n=1)
            where = ".".join(done)
            return False, f" (did you mean {where + '.' if where else ''}{hint[0]}?)" if hint else ""
        node, done = node[part], done + [part]
    return True, node


def get_path(config: ConfigDict, path: str):
    """config["a"]["b"] for "a.b"; ConfigError naming the path (with a close match) when it does not exist."""
    found, value = lookup(config, path)
    if not found:
        raise ConfigError(f"config.{path}: no such key{value}")
    return value


def require_finite(config: ConfigDict, prefix: str = "") -> None:
    """ConfigError naming the first float of ``config`` (tuples included) that is NaN or infinite."""
    for key, value in config.items():
        if isinstance(value, (ConfigDict, dict)):
            require_finite(value, f"{prefix}{key}.")
            continue
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                fail(f"{prefix}{key}", value, "must be a finite number")


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts -> {"a.b.c": leaf} (config.json and summaries as flat, dotted paths)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
