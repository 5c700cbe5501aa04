"""Statistics over seeds and the markdown tables experiments print (host-side numpy; one place for both).

    stats([0.1, 0.2, nan])       -> {"mean", "std", "min", "max", "n"} of the finite values (7 significant digits)
    mean_std([0.1, 0.2])         -> {"mean", "std"}        (std: sample, ddof = 1; 0 for a single value)
    markdown_table(rows, [("lr", "lr"), ("test acc", "test_accuracy")])
    kendall([1, 2, 3], [1, 3, 2])                                  -> Kendall's τ-b (scipy), NaN when undefined
    granulated_kendall(rows, "measure", "gap", ["lr", "batch"])  -> Jiang et al.'s Ψ and ψ per axis
    grid_summary(runs)           -> {"runs": per run, "grid": statistics over seeds per grid point}
    run_curves(runs, keys)       -> every run's records and mean ± std over seeds per grid point, for the plots

A sweep's runs (``RunResult``: ``coords`` and ``result``): a run flagged ``diverged`` is counted and listed (seed,
step) but left out of the statistics, and its records from the divergence step on are left out of the curves: its
frozen values describe the blow-up, not the configuration. ``std`` is the sample standard deviation (ddof = 1; 0
for a single seed).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Sequence

import numpy as np


def finite(values) -> np.ndarray:
    """The finite numbers among ``values`` (non-numbers, NaN and inf dropped) as float64."""
    return np.asarray([x for x in values if isinstance(x, (int, float)) and not isinstance(x, bool)
                       and math.isfinite(x)], np.float64)


def stats(values: Sequence[float]) -> dict | None:
    """mean, std (ddof=1), min, max and n of the finite values; None if there are none."""
    v = finite(values)
    if v.size == 0:
        return None
    std = float(v.std(ddof=1)) if v.size > 1 and v.max() > v.min() else 0.0
    r = lambda x: float(f"{x:.7g}")  # noqa: E731 - the float32 inputs hold 7 significant digits
    return {"mean": r(v.mean()), "std": r(std), "min": r(v.min()), "max": r(v.max()), "n": int(v.size)}


def mean_std(values) -> dict:
    """{"mean", "std"} of ``values`` as given (NaN when empty; std 0 for a single value)."""
    v = np.asarray(values, np.float64).reshape(-1)
    return {"mean": float(v.mean()) if v.size else float("nan"), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}


def final_stats(finals: Sequence[dict], keys: Sequence[str]) -> dict:
    """{key_mean, key_std} over the final records that did not diverge, and ``diverged`` (a count)."""
    ok = [f for f in finals if not f.get("diverged", False)]
    out = {"diverged": len(finals) - len(ok)}
    for k in keys:
        s = mean_std([f[k] for f in ok if isinstance(f.get(k), (int, float))])
        out[f"{k}_mean"], out[f"{k}_std"] = s["mean"], s["std"]
    return out


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str | Callable[[dict], str]]],
                   digits: int = 4) -> str:
    """rows -> a markdown table. columns: (header, key or cell function); a key 'x' whose row has x_mean/x_std
    shows 'm ± s'; floats get ``digits`` significant digits."""
    def cell(row, key):
        if callable(key):
            return key(row)
        if f"{key}_mean" in row:
            m, s = row[f"{key}_mean"], row[f"{key}_std"]
            return f"{m:.{digits}g} ± {s:.2g}" if np.isfinite(m) else "—"
        v = row.get(key, "")
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, k) for _, k in columns) + " |" for r in rows]
    return "\n".join(lines)


def kendall(x, y) -> float:
    """Kendall's τ-b between x and y (``scipy.stats.kendalltau``) over the pairs where both are finite; NaN with
    fewer than two such pairs or when either side is constant."""
    from scipy.stats import kendalltau

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(kendalltau(x[ok], y[ok]).statistic)


def granulated_kendall(rows: Sequence[dict], measure: str, target: str, axes: Sequence[str],
                       fixed: Sequence[str] = ("seed",)) -> dict:
    """Jiang et al. (2020, "Fantastic generalization measures", §4.2) granulated Kendall coefficient.

    For each axis i, the rows fall into groups that agree on every other axis and on ``fixed`` (e.g. the seed),
    so within a group only axis i varies; ψ_i is the mean over groups of τ(measure, target) within the group
    (groups where τ is undefined are skipped), and Ψ = mean_i ψ_i. Returns {"psi": Ψ, "per_axis": {axis: ψ_i},
    "groups": {axis: number of groups used}}; NaN where no group defines τ.
    """
    per_axis, used = {}, {}
    for axis in axes:
        groups = defaultdict(list)
        for r in rows:
            groups[tuple(r.get(a) for a in (*axes, *fixed) if a != axis)].append(r)
        taus = [kendall([r[measure] for r in g], [r[target] for r in g]) for g in groups.values()]
        taus = [t for t in taus if np.isfinite(t)]
        per_axis[axis] = float(np.mean(taus)) if taus else float("nan")
        used[axis] = len(taus)
    vals = [v for v in per_axis.values() if np.isfinite(v)]
    return {"psi": float(np.mean(vals)) if vals else float("nan"), "per_axis": per_axis, "groups": used}


# ------------------------------------------------------------------------------------------ over seeds

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


def run_curves(runs: Sequence, keys: Sequence[str]) -> tuple[list, list]:
    """What the loss plots draw: ([(label, records)] per run, [(label, {key: curve})] per grid point)."""
    per_run = [(label(r.coords), r.result.records) for r in runs]
    per_point = [(label(point), {k: curve(rs, k) for k in keys}) for point, rs in by_point(runs)]
    return per_run, per_point
