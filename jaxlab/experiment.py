"""Running a config's grid of runs (seeds × sweep axes) and writing the standard outputs.

    results = run_grid(config, workdir)   # vmapped sweep; metrics.jsonl with run coordinates
    write_grid_outputs(results, workdir)  # summary.json (statistics over seeds), loss curves, mean ± std bands
"""
from __future__ import annotations

import os

from jaxlab.io import write_summary
from jaxlab.plots import plot_bands, plot_curves
from jaxlab.sweep import RunResult, SweepResult, by_point, curve, grid_summary, sweep
from jaxlab.sweep.aggregate import label
from jaxlab.sweep.plan import traceable  # noqa: F401  (re-exported: which paths are traced)

__all__ = ["RunResult", "run_grid", "grid_summary", "write_grid_outputs"]


def run_grid(config, workdir: str | None = None, progress: bool | None = None) -> SweepResult:
    """Every (seed, grid point) of ``config.sweep``, through :func:`jaxlab.sweep.sweep` (one vmapped program
    per structural group); records go to ``workdir/metrics.jsonl`` tagged with their coordinates. The result
    is a sequence of RunResult (grid order) with the aggregate in ``.summary``."""
    return sweep(config, workdir=workdir, progress=progress)


def write_grid_outputs(results, workdir: str, extra_summary: dict | None = None,
                       keys=("train_loss", "test_accuracy")) -> dict:
    """summary.json (per run, and mean/std/min/max over seeds per grid point), loss_curves.png (every run) and
    loss_bands.png (mean ± std over seeds per grid point)."""
    base = results.summary if isinstance(results, SweepResult) else grid_summary(results)
    summary = {**base, **(extra_summary or {})}
    write_summary(workdir, summary)
    runs = [(", ".join(f"{k.split('.')[-1]}={v}" for k, v in r.coords.items()), r.result.records) for r in results]
    plot_curves(runs, list(keys), os.path.join(workdir, "loss_curves.png"))
    bands = [(label(point), {k: curve(rs, k) for k in keys}) for point, rs in by_point(results)]
    plot_bands(bands, list(keys), os.path.join(workdir, "loss_bands.png"))
    return summary
