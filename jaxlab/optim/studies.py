"""The optimiser studies behind ``experiments.weight_decay_variants`` and ``experiments.schedules``.

    out = weight_decay_study(config, workdir)   # variants × λ × lr, vmapped over seeds (and λ, lr)
    out = schedule_study(config, workdir)       # schedules at equal budget, + the refinement of one of them

Each returns ``{"rows": [...], "table": markdown}`` and writes metrics.jsonl (every record tagged with its run),
summary.json, results.md and plots into ``workdir`` when given. Grids come from ``config.sweep``: seeds, and
``sweep.axes`` over the structural key (``optim.wd_variant`` / ``optim.schedule.name``) and traced ones.
"""
from __future__ import annotations

import os

import numpy as np

from jaxlab import data as data_lib
from jaxlab.config import ConfigError, get_path, validate
from jaxlab.grid import grid_points, parse_axes, with_overrides
from jaxlab.io import MetricsWriter, write_json, write_summary
from jaxlab.optim.runs import curvature_keys, final_stats, markdown_table, run_points

METRICS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "param_norm")


def _seeds(config) -> list[int]:
    return list(range(config.seed, config.seed + config.sweep.seeds))


def _split_axes(config, structural: str, traced: tuple[str, ...]):
    axes = parse_axes(config.sweep.axes, config)
    values = axes.pop(structural, None) or [get_path(config, structural)]
    extra = sorted(set(axes) - set(traced))
    if extra:
        raise ConfigError(f"config.sweep.axes: this study sweeps {structural} and {list(traced)}; "
                          f"{extra} cannot be swept here")
    return values, axes


def _write_records(writer, label: dict, result) -> None:
    if writer is None:
        return
    for seed, records in zip(result.seeds, result.records):
        w = writer.with_extra({"run": {**label, **result.point, "seed": seed}})
        for r in records:
            w.write(r)


def _finish(workdir, rows, table, columns, title, extra=None):
    if workdir:
        write_summary(workdir, {"rows": rows, **(extra or {})})
        with open(os.path.join(workdir, "results.md"), "w") as f:
            f.write(f"# {title}\n\n{table}\n")
    print(f"\n{title}\n\n{table}\n")
    return {"rows": rows, "table": table, "columns": columns, **(extra or {})}


def check_weight_decay_study(config):
    """-> (variants, traced axes, {variant: config}); ConfigError naming the key before any compute (every
    variant's config is validated)."""
    variants, axes = _split_axes(config, "optim.wd_variant", ("optim.weight_decay", "optim.lr"))
    configs = {v: with_overrides(config, {"optim.wd_variant": v, "optim.weight_decay": 0.0}) for v in variants}
    for cfg in configs.values():
        validate(cfg)
    return variants, axes, configs


def check_schedule_study(config):
    """-> (schedule names, traced axes, {name: config} in run order: the refined schedule's source first)."""
    names, axes = _split_axes(config, "optim.schedule.name", ("optim.lr",))
    source = config.optim.schedule.name
    if source == "refined":
        raise ConfigError("config.optim.schedule.name='refined': name the schedule to refine from (e.g. 'linear')")
    order = [source] + [n for n in names if n not in (source, "refined")]
    configs = {n: with_overrides(config, {"optim.schedule.name": n}) for n in order}
    for cfg in configs.values():
        validate(cfg)
    return names, axes, configs


# ---------------------------------------------------------------------------------------------------- weight decay

def weight_decay_study(config, workdir: str | None = None) -> dict:
    """Each weight-decay variant over a grid of λ (and lr), every point vmapped over seeds.

    λ is the decoupled rate: l2, decoupled and cautious use it as is (per-step decay lr_t·λ for SGD/decoupled);
    independent uses λ·optim.lr, the same per-step decay at the reference lr — so the lr axis shows the
    difference: independent's decay ignores lr, the others' scales with it. "none" runs once per lr.
    """
    variants, axes, configs = check_weight_decay_study(config)
    wds = axes.get("optim.weight_decay", [config.optim.weight_decay])
    lrs = axes.get("optim.lr", [config.optim.lr])
    dataset = data_lib.get_dataset(config.data)
    writer = MetricsWriter(workdir) if workdir else None
    rows, curves = [], {}
    for variant, cfg in configs.items():
        grid = [(lr, 0.0) for lr in lrs] if variant == "none" else [(lr, wd) for lr in lrs for wd in wds]
        scale = config.optim.lr if variant == "independent" else 1.0
        grid_axes = {"optim.lr": [float(lr) for lr in lrs],
                     "optim.weight_decay": [0.0] if variant == "none" else [float(wd) * scale for wd in wds]}
        results = run_points(cfg, grid_axes, _seeds(config), dataset, desc=variant)
        for (lr, wd), res in zip(grid, results):
            _write_records(writer, {"optim.wd_variant": variant}, res)
            keys = list(METRICS) + curvature_keys(res.records[0]) + _extra_keys(res.records[0][-1])
            rows.append({"variant": variant, "lr": lr, "weight_decay": wd,
                         "weight_decay_used": res.point["optim.weight_decay"], **final_stats(res, keys)})
            curves[(variant, lr, wd)] = res.records
    if writer:
        writer.close()
    extra_cols = [(k, k) for k in curvature_keys(next(iter(curves.values()))[0])]
    if any("cautious_fraction_mean" in r for r in rows):
        extra_cols.append(("cautious frac.", "cautious_fraction"))
    columns = [("variant", "variant"), ("lr", "lr"), ("λ", "weight_decay"), ("train loss", "train_loss"),
               ("test loss", "test_loss"), ("train acc", "train_accuracy"), ("test acc", "test_accuracy"),
               ("‖θ‖", "param_norm"), *extra_cols, ("diverged", "diverged")]
    table = markdown_table(rows, columns)
    if workdir:
        from jaxlab.optim.study_plots import plot_weight_decay

        plot_weight_decay(rows, curves, os.path.join(workdir, "weight_decay_variants.png"))
    n = len(_seeds(config))
    return _finish(workdir, rows, table, columns, f"Weight-decay variants (mean ± std over {n} seeds)")


def _extra_keys(record: dict) -> list[str]:
    return [k for k in ("cautious_fraction",) if k in record]


# ---------------------------------------------------------------------------------------------------- schedules

def schedule_study(config, workdir: str | None = None) -> dict:
    """Every schedule in ``sweep.axes`` (optim.schedule.name) at the same budget and peak lr(s), vmapped over seeds.

    "refined" is derived from the per-step gradient norms (mean over seeds) of the run with
    ``config.optim.schedule.name`` (run first), following Defazio et al. (2023); it is run last.
    """
    names, axes, configs = check_schedule_study(config)
    points = {"optim.lr": [float(p.get("optim.lr", config.optim.lr)) for p in grid_points(axes)]}
    source = config.optim.schedule.name
    order = list(configs)
    dataset = data_lib.get_dataset(config.data)
    writer = MetricsWriter(workdir) if workdir else None
    results = {}
    for name in order:
        results[name] = run_points(configs[name], points, _seeds(config), dataset, desc=name)
    extra = {}
    if "refined" in names:
        norms = results[source][0].per_step["grad_norm"].mean(axis=0)  # first lr point's seeds
        path = os.path.join(workdir or ".", f"grad_norms_{source}.npy")
        np.save(path, norms)
        cfg = with_overrides(config, {"optim.schedule.name": "refined", "optim.schedule.refine_path": path})
        validate(cfg)
        results["refined"] = run_points(cfg, points, _seeds(config), dataset, desc="refined")
        extra["refined_from"] = {"schedule": source, "grad_norms": path}
    if writer:
        for name, res in results.items():
            for r in res:
                _write_records(writer, {"optim.schedule.name": name}, r)
        writer.close()
    shown = [n for n in names if n in results] + [n for n in results if n not in names]
    rows = [{"schedule": n, "lr": r.point["optim.lr"], **final_stats(r, METRICS)}
            for n in shown for r in results[n]]
    columns = [("schedule", "schedule"), ("peak lr", "lr"), ("train loss", "train_loss"), ("test loss", "test_loss"),
               ("train acc", "train_accuracy"), ("test acc", "test_accuracy"), ("diverged", "diverged")]
    table = markdown_table(rows, columns)
    if workdir:
        from jaxlab.optim.study_plots import plot_schedules

        plot_schedules({n: results[n] for n in shown}, os.path.join(workdir, "schedules.png"))
        write_json(os.path.join(workdir, "lr_curves.json"),
                   {n: results[n][0].per_step["lr"][0].tolist() for n in shown})
    n = len(_seeds(config))
    title = f"Schedules at equal budget ({config.train.steps} steps; mean ± std over {n} seeds)"
    return _finish(workdir, rows, table, columns, title, extra)
