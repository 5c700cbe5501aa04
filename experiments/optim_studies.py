"""What the two optimiser studies (experiments.weight_decay_variants, experiments.schedules) share: many runs of
one config as one vmapped sweep, grouped by grid point, and the study's outputs.

    results = run_points(config, {"optim.lr": [0.1, 0.3]}, seeds=[0, 1, 2])
    results[1].records[2][-1]["test_accuracy"]      # point 1 (lr 0.3), seed 2, last logged step
    results[1].per_step["grad_norm"]                # [seeds, steps]: every optimiser step
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from jaxlab.config import ConfigError, get_path
from jaxlab.grid import parse_axes
from jaxlab.io import write_summary
from jaxlab.sweep import by_point, sweep

METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "param_norm")

PER_STEP_KEYS = ("grad_norm", "batch_loss", "lr")


@dataclasses.dataclass
class PointResult:
    point: dict                       # {"optim.lr": ..., ...}: the traced values of this grid point
    seeds: list[int]
    records: list[list[dict]]         # [seed][logged step] -> record
    per_step: dict[str, np.ndarray]   # key -> [seeds, steps], every optimiser step (PER_STEP_KEYS)


def run_points(config, axes: dict[str, Sequence[float]], seeds: Sequence[int], dataset=None, desc: str = "",
               progress: bool | None = None) -> list[PointResult]:
    """Train every (grid point of ``axes``, seed) of ``config`` as one vmapped sweep; grid order as in ``axes``."""
    res = sweep(config, seeds=list(seeds), axes={k: list(v) for k, v in axes.items()}, dataset=dataset,
                progress=progress, keep_states=False, per_step_keys=PER_STEP_KEYS,
                log=(lambda msg: print(f"[{desc}] {msg}")) if desc and progress else None)
    out = []
    for point, runs in by_point(res):
        out.append(PointResult(point=dict(point), seeds=[r.coords["seed"] for r in runs],
                               records=[r.result.records for r in runs],
                               per_step={k: np.stack([r.result.per_step[k] for r in runs]) for k in PER_STEP_KEYS}))
    return out


def curvature_keys(records: Sequence[dict]) -> list[str]:
    """Keys only curvature measurements produce (present when config.curvature.every > 0), e.g. 'sharpness'."""
    base = {"step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "param_norm", "lr", "diverged",
            "grad_norm", "batch_loss", "batch_accuracy", "cautious_fraction", "lion_linf", "lion_linf_bound"}
    last = records[-1]
    return [k for k in last if k not in base and "/" not in k and isinstance(last[k], (int, float))]


def split_axes(config, structural: str, traced: tuple[str, ...]):
    axes = parse_axes(config.sweep.axes, config)
    values = axes.pop(structural, None) or [get_path(config, structural)]
    extra = sorted(set(axes) - set(traced))
    if extra:
        raise ConfigError(f"config.sweep.axes: this study sweeps {structural} and {list(traced)}; "
                          f"{extra} cannot be swept here")
    return values, axes


def write_records(writer, label: dict, result) -> None:
    if writer is None:
        return
    for seed, records in zip(result.seeds, result.records):
        w = writer.with_extra({"run": {**label, **result.point, "seed": seed}})
        for r in records:
            w.write(r)


def finish(workdir, rows, table, columns, title, extra=None):
    if workdir:
        write_summary(workdir, {"rows": rows, **(extra or {})})
        with open(os.path.join(workdir, "results.md"), "w") as f:
            f.write(f"# {title}\n\n{table}\n")
    print(f"\n{title}\n\n{table}\n")
    return {"rows": rows, "table": table, "columns": columns, **(extra or {})}
