"""Planning a sweep: which axes are traced, how runs group into compiled programs, and how groups split into chunks.

A run is a point of ``seeds × axes``. Axes whose values can be traced (numeric ``optim.*`` fields, passed to the
trainer as the run's :class:`jaxlab.optim.Numbers`) vary inside one compiled program; the others (model width,
optimiser kind, batch size, ...) change the program's structure, so each of their values is a separate *group*,
compiled on its own and run in turn. A group's runs go through its program in *chunks* of at most
``runs_per_program`` (memory), every chunk padded to the same size (a multiple of the device count) so one
compilation serves them all.
"""
from __future__ import annotations

import dataclasses

from jaxlab import optim
from jaxlab.config import ConfigError, get_path
from jaxlab.grid import grid_points, parse_axes, with_overrides
from jaxlab.schema import validate

PREFIX = "optim."


@dataclasses.dataclass(frozen=True)
class RunSpec:
    index: int     # position in the sweep's run order (point-major, then seed)
    seed: int
    point: dict    # {path: value} of the grid point (traced and structural)
    numbers: optim.Numbers  # the run's traced numbers (Python floats), the group config's defaults included

    @property
    def coords(self) -> dict:
        return {"seed": self.seed, **self.point}


@dataclasses.dataclass
class Group:
    structural: dict     # {path: value} shared by the group's runs ({} when every axis is traced)
    config: object       # the base config with ``structural`` applied
    runs: list[RunSpec]


def traceable(config, path: str) -> bool:
    """True for paths varied as traced values in one program: the optimiser's numeric fields.

    ``optim.<field>`` for every field of :class:`jaxlab.optim.Numbers` (``lr``, ``weight_decay``, ``b1``,
    ``schedule.warmup_steps``, ...: ``jaxlab.optim.FIELDS``). Names, flags, tuples and every other section (model
    width, batch size, ...) change the program: they are structural.
    """
    get_path(config, path)  # an unknown path fails here, naming it
    return path.startswith(PREFIX) and path[len(PREFIX):] in optim.FIELDS


def point_numbers(config, point: dict) -> optim.Numbers:
    """The traced numbers of a run at grid ``point`` ({config path: value}): the traced paths' values by field name
    over ``config``'s defaults (``optim.traced_numbers``), as Python floats. The one place a grid point's paths
    become the optimiser's field names."""
    values = {p[len(PREFIX):]: v for p, v in point.items() if traceable(config, p)}
    return optim.traced_numbers(config.optim, values, dtype=None)


def seed_list(config, seeds=None) -> list[int]:
    """seeds: None (``config.sweep.seeds`` seeds from ``config.seed``), a count, or explicit seeds."""
    seeds = config.sweep.seeds if seeds is None else seeds
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"config.sweep.seeds={seeds}: must be >= 1")
        return list(range(config.seed, config.seed + seeds))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ConfigError(f"sweep seeds={list(seeds)}: must be a non-empty list of distinct integers")
    return out


def plan(config, seeds=None, axes=None) -> tuple[list[Group], dict[str, list]]:
    """Groups of runs for ``seeds × axes`` (defaults: ``config.sweep``), checked before any compute so a bad value
    fails naming its key: each structural group's config is validated (``config`` itself is the caller's to
    validate), each traced point's optimiser numbers checked (``check_point``)."""
    axes = parse_axes(config.sweep.axes if axes is None else axes, config)
    seeds = seed_list(config, seeds)
    traced = [p for p in axes if traceable(config, p)]
    groups: dict[str, Group] = {}
    index = 0
    for point in grid_points(axes):
        structural = {k: v for k, v in point.items() if k not in traced}
        key = repr(sorted(structural.items()))
        if key not in groups:
            groups[key] = Group(structural, check_group(config, structural), [])
        group = groups[key]
        check_point(group.config, {k: point[k] for k in traced})
        numbers = point_numbers(group.config, point)
        for seed in seeds:
            group.runs.append(RunSpec(index, seed, dict(point), numbers))
            index += 1
    return list(groups.values()), axes


def _at(point: dict, check):
    try:
        return check()
    except (ConfigError, ValueError, TypeError) as e:
        raise ConfigError(f"config.sweep.axes: grid point {point}: {e}") from e


def check_group(config, structural: dict):
    """``config`` with a group's ``structural`` values applied, validated (a new model, optimiser kind, ... is
    a new config); errors name the grid point and the bad key."""
    if not structural:
        return config

    def checked():
        cfg = with_overrides(config, structural)
        with cfg.unlocked():
            cfg.sweep.axes = ""  # this group's own checks, not the whole grid's again
        return validate(cfg)

    return _at(structural, checked)


def check_point(config, traced: dict) -> None:
    """The optimiser section of ``config`` (a validated group config) at a point's ``traced`` values: the only
    checks whose inputs a traced value changes (``optim.check_optim``); errors name the grid point."""
    if traced:
        _at(traced, lambda: optim.check_optim(with_overrides(config, traced).optim, config.train.steps))


def chunk_sizes(num_runs: int, runs_per_program: int | None, num_devices: int) -> tuple[int, int]:
    """(number of chunks, runs per chunk) for a group: balanced chunks, each a multiple of ``num_devices``.

    runs_per_program: most runs one program may hold (None = no limit); at least one run per device.
    """
    cap = num_runs if runs_per_program is None else max(runs_per_program // num_devices, 1) * num_devices
    num_chunks = -(-num_runs // max(cap, 1))
    per_chunk = -(-num_runs // num_chunks)
    per_chunk = -(-per_chunk // num_devices) * num_devices  # pad up to the device count
    return num_chunks, per_chunk


def describe(groups: list[Group], axes: dict, seeds: list[int]) -> str:
    """One paragraph for the log: what is vmapped, what is looped over."""
    cfg = groups[0].config
    traced = [p for p in axes if traceable(cfg, p)]
    structural = [p for p in axes if p not in traced]
    n = sum(len(g.runs) for g in groups)
    lines = [f"{n} runs = {len(seeds)} seeds × {n // len(seeds)} grid points; vmapped in one program per group: "
             f"seed{', ' + ', '.join(traced) if traced else ''} (traced, no recompilation per value)"]
    if structural:
        lines.append(f"structural axes {', '.join(structural)} cannot be traced: a loop over {len(groups)} groups, "
                     f"each compiled separately")
    return "\n".join(lines)
