"""Running a config's grid of runs (seeds × sweep axes) and writing the standard outputs.

    results = run_grid(config, workdir)   # vmapped sweep; metrics.jsonl with run coordinates
    write_grid_outputs(results, workdir)  # summary.json (statistics over seeds), loss curves, mean ± std bands

The outputs are one walk: the summary (``jaxlab.stats``), then the figures (``jaxlab.plots.draw``), then the files
(``jaxlab.io.write_outputs``).
"""
from __future__ import annotations

from jaxlab.io import write_outputs
from jaxlab.plots import Bands, Curves, draw
from jaxlab.stats import grid_summary, run_curves
from jaxlab.sweep import RunResult, SweepResult, sweep

__all__ = ["RunResult", "run_grid", "grid_summary", "write_grid_outputs"]


def run_grid(config, workdir: str | None = None, progress: bool | None = None) -> SweepResult:
    """Every (seed, grid point) of ``config.sweep``, through :func:`jaxlab.sweep.sweep` (one vmapped program
    per structural group); records go to ``workdir/metrics.jsonl`` tagged with their coordinates. The result
    is a sequence of RunResult (grid order) with the aggregate in ``.summary``."""
    return sweep(config, workdir=workdir, progress=progress)


def write_grid_outputs(results, workdir: str, extra_summary: dict | None = None,
                       keys=("train_loss", "test_accuracy"), figures=()) -> dict:
    """summary.json (per run, and mean/std/min/max over seeds per grid point, plus ``extra_summary``),
    loss_curves.png (every run of ``keys``), loss_bands.png (mean ± std over seeds per grid point) and the PNG of
    each of ``figures`` (more ``jaxlab.plots`` figures). -> the summary."""
    base = results.summary if isinstance(results, SweepResult) else grid_summary(results)
    summary = {**base, **(extra_summary or {})}
    per_run, per_point = run_curves(results, keys)
    pngs = draw([*figures, Curves("loss_curves.png", per_run, keys), Bands("loss_bands.png", per_point, keys)])
    write_outputs(workdir, summary, pngs)
    return summary
