"""Statistics over seeds per grid point: the numbers of ``summary.json`` and the bands of the plots.

A run flagged ``diverged`` is counted and listed (seed, step) but left out of the statistics, and its
records from the divergence step on are left out of the curves: its frozen values describe the blow-up,
not the configuration. ``std`` is the sample standard deviation (ddof = 1; 0 for a single seed).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from jaxlab.stats import stats


def point_of(coords: dict) -> dict:
    return {k: v for k, v in coords.items() if k != "seed"}


def by_point(runs: Sequence) -> list[tuple[dict, list]]:
    """RunResults grouped by grid point (seed dropped), in first-seen order: [(point, [run, ...])]."""
    groups: dict[str, tuple[dict, list]] = {}
    for r in runs:
        point = point_of(r.coords)
        groups.setdefault(repr(point), (point, []))[1].append(r)
    return list(groups.values())


def point_summary(point: dict, runs: Sequence) -> dict:
    alive = [r for r in runs if not r.result.summary.get("diverged")]
    keys = [k for k, v in runs[0].result.summary.items()
            if k.startswith("final_") and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {
        "point": point,
        "seeds": [r.coords["seed"] for r in runs],
        "num_diverged": len(runs) - len(alive),
        "diverged": [{"seed": r.coords["seed"], "step": r.result.summary.get("diverged_step")}
                     for r in runs if r.result.summary.get("diverged")],
        "metrics": {k: stats([r.result.summary.get(k) for r in alive]) for k in keys},
    }


def grid_summary(runs: Sequence, axes: dict | None = None) -> dict:
    """{"runs": per-run coordinates and summary, "grid": per grid point statistics over seeds}."""
    out = {"runs": [{**r.coords, **r.result.summary} for r in runs],
           "grid": [point_summary(point, rs) for point, rs in by_point(runs)]}
    if axes is not None:
        out["axes"] = {k: list(v) for k, v in axes.items()}
    return out


def curve(runs: Sequence, key: str) -> dict[str, np.ndarray]:
    """Mean ± std over the runs of ``key`` at each logged step -> {"step", "mean", "std", "n"} arrays.

    A diverged run contributes its records before its divergence step only; non-finite values are skipped.
    """
    per_step: dict[int, list[float]] = {}
    for r in runs:
        s = r.result.summary
        stop = s.get("diverged_step", -1) if s.get("diverged") else None
        for rec in r.result.records:
            v = rec.get(key)
            if stop is not None and rec["step"] >= stop:
                break
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                per_step.setdefault(rec["step"], []).append(float(v))
    steps = sorted(per_step)
    vals = [np.asarray(per_step[s]) for s in steps]
    return {"step": np.asarray(steps), "mean": np.asarray([v.mean() for v in vals]),
            "std": np.asarray([v.std(ddof=1) if v.size > 1 else 0.0 for v in vals]),
            "n": np.asarray([v.size for v in vals])}


def label(point: dict) -> str:
    """A short legend label: the last component of each path."""
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "base config"
