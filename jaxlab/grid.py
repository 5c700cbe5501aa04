"""Grids over config paths: parsing ``sweep.axes`` strings and enumerating points.

    parse_axes("optim.lr=0.01,0.02;optim.weight_decay=0,1e-3")
      -> {"optim.lr": [0.01, 0.02], "optim.weight_decay": [0, 0.001]}
    parse_axes("model.widths=(64,64),(128,128)") -> {"model.widths": [(64, 64), (128, 128)]}
"""
from __future__ import annotations

import ast
import itertools

from jaxlab.config import ConfigError, get_path


def _value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string, e.g. an optimiser name


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets, so tuple values survive: '(64,64),(128,128)' -> ['(64,64)', '(128,128)']."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def parse_axes(spec: str | dict, config=None) -> dict[str, list]:
    """'path=v1,v2;path2=...' (or a dict) -> {path: [values]}; paths are checked against ``config``."""
    if isinstance(spec, dict):
        axes = {k: list(v) for k, v in spec.items()}
    else:
        axes = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            if "=" not in part:
                raise ConfigError(f"config.sweep.axes={spec!r}: {part!r} is not of the form path=v1,v2")
            path, values = part.split("=", 1)
            axes[path.strip()] = [_value(v.strip()) for v in _split_top(values) if v.strip()]
    for path, values in axes.items():
        if not values:
            raise ConfigError(f"config.sweep.axes: {path!r} has no values")
        if config is not None:
            get_path(config, path)  # raises ConfigError naming an unknown path
    return axes


def grid_points(axes: dict[str, list]) -> list[dict]:
    """Cartesian product in row-major order: [{path: value}]."""
    if not axes:
        return [{}]
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def with_overrides(config, point: dict):
    """A copy of ``config`` with ``point``'s paths set (for structural axes that cannot be traced)."""
    cfg = config.copy_and_resolve_references()
    with cfg.unlocked():
        for path, value in point.items():
            *parents, leaf = path.split(".")
            node = cfg
            for p in parents:
                node = node[p]
            node[leaf] = type(node[leaf])(value) if isinstance(node[leaf], (int, float)) and not isinstance(
                node[leaf], bool) else value
    return cfg


def grids(config, prefix: str = "") -> list[tuple[str, str]]:
    """[(path, spec)] of the grids a config holds: ``sweep.axes``, and any string key named ``*_axes`` (an
    experiment's own grid, e.g. ``recall.softmax_axes``)."""
    out = []
    for key, value in config.items():
        if hasattr(value, "items"):
            out += grids(value, f"{prefix}{key}.")
        elif isinstance(value, str) and value and (key == "axes" or key.endswith("_axes")):
            out.append((f"{prefix}{key}", value))
    return out


def axis_conflict(config, overrides: dict) -> str | None:
    """The first override (``{path: value}``, e.g. the ``--config.PATH=VALUE`` flags) of a key that a grid of
    ``config`` also sets, as a one-line message with the fix; None when there is none. Every point of the grid would
    replace the flag's value, so such a command never runs what it says."""
    for grid, spec in grids(config):
        parts = [p.strip() for p in spec.split(";") if p.strip()]
        for i, part in enumerate(parts):
            path = part.split("=", 1)[0].strip()
            if path in overrides and path != grid:
                value = overrides[path]
                text = value if isinstance(value, str) else repr(value)
                fixed = ";".join(parts[:i] + [f"{path}={text}"] + parts[i + 1:])
                return (f"--config.{path}={text} conflicts with config.{grid}, which sets {part}: drop the flag, "
                        f"or give the grid that one value: --config.{grid}=\"{fixed}\"")
    return None
