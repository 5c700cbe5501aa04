"""Many runs of one config as one program, in the layout the optimiser studies use, and their tables.

    results = run_points(config, {"optim.lr": [0.1, 0.3]}, seeds=[0, 1, 2])
    results[1].records[2][-1]["test_accuracy"]      # point 1 (lr 0.3), seed 2, last logged step
    results[1].per_step["grad_norm"]                # [seeds, steps]: every optimiser step

A thin view of :func:`jaxlab.sweep.sweep` (one vmapped program over the product grid × seeds): results grouped
by grid point, with the per-step metrics the studies need (the refined schedule reads every step's gradient norm).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from jaxlab.sweep import by_point, sweep

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


# ---------------------------------------------------------------------------------------------------- aggregation

def final_stats(result: PointResult, keys: Sequence[str]) -> dict:
    """{key_mean, key_std} over the seeds that did not diverge (last record), and ``diverged`` (a count)."""
    finals = [r[-1] for r in result.records]
    ok = [f for f in finals if not f.get("diverged", False)]
    out = {"diverged": len(finals) - len(ok)}
    for k in keys:
        vals = np.array([f[k] for f in ok if isinstance(f.get(k), (int, float))], np.float64)
        out[f"{k}_mean"] = float(vals.mean()) if vals.size else float("nan")
        out[f"{k}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
    return out


def curvature_keys(records: Sequence[dict]) -> list[str]:
    """Keys only curvature measurements produce (present when config.curvature.every > 0), e.g. 'sharpness'."""
    base = {"step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "param_norm", "lr", "diverged",
            "grad_norm", "batch_loss", "batch_accuracy", "cautious_fraction", "lion_linf", "lion_linf_bound"}
    last = records[-1]
    return [k for k in last if k not in base and "/" not in k and isinstance(last[k], (int, float))]


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], digits: int = 4) -> str:
    """rows of stats -> a markdown table. columns: (header, key); a key 'x' with x_mean/x_std shows 'm ± s'."""
    def cell(row, key):
        if f"{key}_mean" in row:
            m, s = row[f"{key}_mean"], row[f"{key}_std"]
            return f"{m:.{digits}g} ± {s:.2g}" if np.isfinite(m) else "—"
        v = row.get(key, "")
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, k) for _, k in columns) + " |" for r in rows]
    return "\n".join(lines)
