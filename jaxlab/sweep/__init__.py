"""Sweeps: seeds × hyperparameters in one compiled program, sharded over devices, with per-run divergence
isolation and statistics over seeds.

    from jaxlab.sweep import sweep
    res = sweep(config, seeds=8, axes="optim.weight_decay=0,1e-3,1e-2")
    res.summary["grid"]          # per grid point: mean / std / min / max over seeds of each final metric

Modules: ``plan`` (traced vs structural axes, groups, chunks) · ``batched`` (vmap + shard_map of the trainer)
· ``memory`` (runs per program from a memory budget) · ``core``; statistics over seeds: jaxlab.stats.
"""
from jaxlab.stats import by_point, curve, grid_summary
from jaxlab.sweep.core import RunResult, SweepResult, sweep
from jaxlab.sweep.plan import plan, traceable

__all__ = ["sweep", "SweepResult", "RunResult", "plan", "traceable", "grid_summary", "curve", "by_point"]
