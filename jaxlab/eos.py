"""Edge-of-stability analysis of tracked runs (host-side numpy): per-run summary numbers and the classic EoS plot.

    s = eos_run_summary(result.records)                 # one run: sharpness vs threshold, sharpening, oscillations
    summary = eos_summary(results, config)              # a sweep's RunResults: {"eos": [row per run]}
    eos_plots(results, config, workdir)                 # eos_sharpness.png, eos_loss.png

Inputs are records as ``jaxlab.train.run`` writes them: dicts with "step" and, at curvature steps, "sharpness",
"eos_threshold" and "sharpness_ratio" (see :mod:`jaxlab.curvature.tracker`). Everything here is host-side numpy.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from jaxlab.curvature.quantities import compared_key
from jaxlab.optim import declaration
from jaxlab.plateau import plateau_test
from jaxlab.plots import plt, save
from jaxlab.stats import markdown_table

LR, WD = "optim.lr", "optim.weight_decay"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _r(x, digits: int = 5):
    return None if x is None or not math.isfinite(x) else float(f"{x:.{digits}g}")


def alive_records(records: Sequence[dict], summary: dict | None = None) -> list[dict]:
    """The records before a run's divergence step (a diverged run's frozen values say nothing about it)."""
    if summary and summary.get("diverged"):
        return [r for r in records if r["step"] < summary.get("diverged_step", 0)]
    return list(records)


def sharpness_key(config, name: str | None = None) -> str:
    """The record of the curvature config's optimiser (or optimiser ``name``) declares its threshold on."""
    return compared_key(declaration(config.optim, name).operator)


def record_key(records: Sequence[dict], operator: str | None = None) -> str:
    """Which recorded curvature the run's eos_threshold applies to: the declared operator's (``compared_key``), or
    without one the first recorded of the preconditioned sharpness, the ZO effective sharpness, λ1."""
    if operator is not None:
        return compared_key(operator)
    for key in ("preconditioned_sharpness", "zo_sharpness", "sharpness"):
        if any(_finite(r.get(key)) for r in records):
            return key
    return "sharpness"


def plateau(steps, values, frac: float = 0.5, tolerance: float = 0.1) -> dict:
    """The plateau test (jaxlab.plateau.plateau_test: equivalence test with power) as summary fields:
    plateaued, plateau_verdict (plateaued | drifting | undecided), plateau_change (relative change over the last
    ``frac`` of the run) with its 90% band plateau_change_ci, plateau_slope_per_1k, plateau_points."""
    r = plateau_test(steps, values, frac=frac, tolerance=tolerance)
    return {"plateaued": r["plateaued"], "plateau_verdict": r["verdict"], "plateau_change": _r(r.get("change")),
            "plateau_change_ci": [_r(x) for x in r["change_ci"]] if r.get("change_ci") else None,
            "plateau_slope_per_1k": _r(r.get("slope_per_1k")), "plateau_points": r.get("num_points"),
            "plateau_tolerance": tolerance}


def eos_run_summary(records: Sequence[dict], reach: float = 0.9, operator: str | None = None) -> dict:
    """Sharpness against the stability threshold for one run.

    records: [{"step", "sharpness", "eos_threshold", "sharpness_ratio", "train_loss", ...}] in step order; the
    sharpness read is the one the threshold applies to (``record_key``: Adam's preconditioned sharpness...).
    Returns (None where undefined):
      threshold                 the last recorded threshold (2/η for GD)
      initial_sharpness, final_sharpness, final_ratio            ratio = sharpness/threshold
      last_quarter_sharpness, last_quarter_ratio                 means over records with step ≥ 3/4 of the last
      max_ratio                 the largest ratio seen
      steps_to_reach            first step with ratio ≥ reach (0.9) after the ratio's lowest point in the first half,
                                None if never: the time progressive sharpening
                                takes to bring λ1 to the threshold
      sharpening_rate           (ratio at steps_to_reach, or at the end) − (smallest ratio before it), per 1000
                                steps between the two: how fast the top eigenvalue climbs towards the threshold
      ratio_std_last_half       std of the ratio over the last half: amplitude of sharpness around the threshold
      ratio_dev_last_half       mean |ratio − 1| over the last half
      loss_increase_frac        fraction of consecutive records (last half) where train_loss went up
      loss_osc_last_half        mean |Δ log train_loss| between consecutive records (last half)
      compared                  which recorded curvature the numbers are of (see record_key)
      plateaued, plateau_verdict, plateau_change, ...   the plateau test of the ratio over the last half (plateau)
    Loss measures compare consecutive *records* (every train.log_every steps): with log_every = 1 they are per step.
    """
    key = record_key(records, operator)
    curv = [r for r in records if _finite(r.get(key))]
    out: dict = {"num_measurements": len(curv)}
    if not curv:
        return out
    out["compared"] = key
    steps = np.asarray([r["step"] for r in curv], np.float64)
    lam = np.asarray([r[key] for r in curv], np.float64)
    ratio = np.asarray([r.get("sharpness_ratio", math.nan) for r in curv], np.float64)
    last = steps[-1]
    q4, h2 = steps >= 0.75 * last, steps >= 0.5 * last
    thr = curv[-1].get("eos_threshold")
    out.update(threshold=_r(thr), initial_sharpness=_r(lam[0]), final_sharpness=_r(lam[-1]), final_ratio=_r(ratio[-1]),
               last_quarter_sharpness=_r(lam[q4].mean()), last_quarter_ratio=_r(ratio[q4].mean()),
               max_ratio=_r(np.nanmax(ratio)) if np.isfinite(ratio).any() else None)
    # Sharpening is timed from the ratio's lowest point in the first half: Adam's first step starts far past its
    # threshold (P of the first step is (1 − β1)(|g| + ε)), then the ratio falls and sharpens back.
    first_half = np.flatnonzero(steps <= 0.5 * last)
    low = int(first_half[np.nanargmin(ratio[first_half])]) if np.isfinite(ratio[first_half]).any() else 0
    hit = low + np.nonzero(ratio[low:] >= reach)[0]
    end = int(hit[0]) if hit.size else len(ratio) - 1
    out["steps_to_reach"] = int(steps[end]) if hit.size else None
    start = low
    dt = steps[end] - steps[start]
    out["sharpening_rate"] = _r(1000.0 * (ratio[end] - ratio[start]) / dt) if dt > 0 else None
    out["ratio_std_last_half"] = _r(ratio[h2].std())
    out["ratio_dev_last_half"] = _r(np.abs(ratio[h2] - 1.0).mean())
    out.update(plateau(steps, ratio))
    loss = np.asarray([r["train_loss"] for r in records if r["step"] >= 0.5 * last and _finite(r.get("train_loss"))])
    if loss.size > 1 and (loss > 0).all():
        d = np.diff(loss)
        out["loss_increase_frac"] = _r(float((d > 0).mean()))
        out["loss_osc_last_half"] = _r(float(np.abs(np.diff(np.log(loss))).mean()))
    return out


def _coord(r, config, path: str):
    if path in r.coords:
        return r.coords[path]
    section, key = path.split(".")
    return config[section][key]


def eos_summary(results, config, reach: float = 0.9) -> dict:
    """{"eos": [per run: seed, lr, weight_decay, diverged + eos_run_summary]} for a sweep's RunResults."""
    rows = []
    for r in results:
        s = r.result.summary
        row = {"seed": r.coords.get("seed"), "lr": _coord(r, config, LR), "weight_decay": _coord(r, config, WD),
               **{k: v for k, v in r.coords.items() if k not in ("seed", LR, WD)},
               "diverged": bool(s.get("diverged"))}
        operator = declaration(config.optim, r.coords.get("optim.name")).operator
        row.update(eos_run_summary(alive_records(r.result.records, s), reach, operator))
        rows.append(row)
    return {"eos": rows}


def format_table(rows: Sequence[dict]) -> str:
    """The per-run numbers as a markdown table (what the experiment prints)."""
    cols = [("lr", "lr"), ("wd", "weight_decay"), ("seed", "seed"), ("threshold", "threshold"),
            ("λ1 last¼", "last_quarter_sharpness"), ("λ1/threshold last¼", "last_quarter_ratio"),
            ("final", "final_ratio"), ("steps→90%", "steps_to_reach"), ("osc(λ1)", "ratio_std_last_half"),
            ("loss↑frac", "loss_increase_frac"), ("mean abs Δlog L", "loss_osc_last_half")]
    return markdown_table([{k: "-" if r.get(k) is None else r[k] for _, k in cols} for r in rows], cols)


# ------------------------------------------------------------------------------------------------ plots

def _panels(results, config):
    """[(weight_decay, [(lr, seed, records)])] in the sweep's order."""
    groups: dict = {}
    for r in results:
        wd = _coord(r, config, WD)
        groups.setdefault(wd, []).append((_coord(r, config, LR), r.coords.get("seed"),
                                          alive_records(r.result.records, r.result.summary)))
    return list(groups.items())


LABELS = {"sharpness": "sharpness λ1", "preconditioned_sharpness": "preconditioned sharpness λ1(P⁻¹H)",
          "zo_sharpness": "ZO effective sharpness 2/η*(H)", "ntk_max": "top NTK eigenvalue (GN λ1)"}


def plot_eos(results, config, path: str, key: str = "sharpness", logy: bool = False, title: str = "") -> str:
    """One panel per weight decay; per lr a line of ``key`` vs step (one colour per lr, every seed) and, for a
    curvature key (LABELS), the run's dashed eos_threshold in the same colour (2/η for GD, 38/η for Adam...)."""
    panels = _panels(results, config)
    lrs = sorted({lr for _, runs in panels for lr, _, _ in runs})
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 3.6 * len(panels)), 3.6), squeeze=False, sharey=True)
    for ax, (wd, runs) in zip(axes[0], panels):
        drawn = set()
        for lr, seed, recs in runs:
            color = f"C{lrs.index(lr) % 10}"
            pts = [(r["step"], r[key]) for r in recs if _finite(r.get(key))]
            if pts:
                ax.plot(*zip(*pts), color=color, lw=1.1, label=None if lr in drawn else f"η={lr:g}")
            thr = [r["eos_threshold"] for r in recs if _finite(r.get("eos_threshold"))]
            if key in LABELS and thr and lr not in drawn:
                ax.axhline(thr[-1], color=color, ls="--", lw=1.0)
            drawn.add(lr)
        if logy:
            ax.set_yscale("log")
        ax.set_title(f"weight decay {wd:g}", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{LABELS[key]} (dashed: threshold)" if key in LABELS else key)
    if axes[0][-1].get_legend_handles_labels()[0]:  # nothing drawn (no such key measured): no legend
        axes[0][-1].legend(fontsize=8)
    return save(fig, path, title)


def eos_plots(results, config, workdir: str, title: str = "") -> list[str]:
    """eos_sharpness.png (the classic EoS plot: the curvature the threshold applies to), eos_loss.png (train
    loss, same layout) and, when tracked, eos_ntk.png (the top NTK eigenvalue against the same threshold)."""
    records = [rec for r in results for rec in r.result.records]
    paths = [plot_eos(results, config, os.path.join(workdir, "eos_sharpness.png"), key=sharpness_key(config), title=title),
             plot_eos(results, config, os.path.join(workdir, "eos_loss.png"), key="train_loss", logy=True,
                      title=f"{config.model.name}: train loss per weight decay")]
    if any(_finite(rec.get("ntk_max")) for rec in records):
        paths.append(plot_eos(results, config, os.path.join(workdir, "eos_ntk.png"), key="ntk_max",
                              title=f"{config.model.name}: function-space curvature vs the threshold"))
    return paths
