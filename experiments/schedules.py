"""Learning-rate schedules side by side at equal budget, plus a refined schedule. Config: configs/schedules.py.

    python -m experiments.schedules --workdir runs/schedules
    out = schedule_study(config, workdir)        # {"rows": [...], "table": markdown, ...}

Writes metrics.jsonl, summary.json, results.md, schedules.png, lr_curves.json and grad_norms_<source>.npy.
"""
from __future__ import annotations

import os

import numpy as np

from jaxlab.config import ConfigError
from jaxlab.grid import grid_points, with_overrides
from jaxlab.io import write_json
from jaxlab import cli
from jaxlab import data as data_lib
from jaxlab.io import MetricsWriter
from jaxlab.plots import plt, save
from jaxlab.schema import validate
from jaxlab.sweep.plan import seed_list
from jaxlab.stats import final_stats, markdown_table
from experiments.optim_studies import (METRICS, finish, run_points, split_axes,
                                       write_records)

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Learning-rate schedules side by side at equal budget, plus a refined schedule"
CPU_TIME = "~2.5 min"


def check_schedule_study(config):
    """-> (schedule names, traced axes, {name: config} in run order: the refined schedule's source first)."""
    names, axes = split_axes(config, "optim.schedule.name", ("optim.lr",))
    source = config.optim.schedule.name
    if source == "refined":
        raise ConfigError("config.optim.schedule.name='refined': name the schedule to refine from (e.g. 'linear')")
    order = [source] + [n for n in names if n not in (source, "refined")]
    configs = {n: with_overrides(config, {"optim.schedule.name": n}) for n in order}
    for cfg in configs.values():
        validate(cfg)
    return names, axes, configs


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
        results[name] = run_points(configs[name], points, seed_list(config), dataset, desc=name)
    extra = {}
    if "refined" in names:
        norms = results[source][0].per_step["grad_norm"].mean(axis=0)  # first lr point's seeds
        path = os.path.join(workdir or ".", f"grad_norms_{source}.npy")
        np.save(path, norms)
        cfg = with_overrides(config, {"optim.schedule.name": "refined", "optim.schedule.refine_path": path})
        validate(cfg)
        results["refined"] = run_points(cfg, points, seed_list(config), dataset, desc="refined")
        extra["refined_from"] = {"schedule": source, "grad_norms": path}
    if writer:
        for name, res in results.items():
            for r in res:
                write_records(writer, {"optim.schedule.name": name}, r)
        writer.close()
    shown = [n for n in names if n in results] + [n for n in results if n not in names]
    rows = [{"schedule": n, "lr": r.point["optim.lr"], **final_stats([s[-1] for s in r.records], METRICS)}
            for n in shown for r in results[n]]
    columns = [("schedule", "schedule"), ("peak lr", "lr"), ("train loss", "train_loss"), ("test loss", "test_loss"),
               ("train acc", "train_accuracy"), ("test acc", "test_accuracy"), ("diverged", "diverged")]
    table = markdown_table(rows, columns)
    if workdir:
        plot_schedules({n: results[n] for n in shown}, os.path.join(workdir, "schedules.png"))
        write_json(os.path.join(workdir, "lr_curves.json"),
                   {n: results[n][0].per_step["lr"][0].tolist() for n in shown})
    n = len(seed_list(config))
    title = f"Schedules at equal budget ({config.train.steps} steps; mean ± std over {n} seeds)"
    return finish(workdir, rows, table, columns, title, extra)


def _mean_curve(records_per_seed, key):
    steps = [r["step"] for r in records_per_seed[0] if isinstance(r.get(key), (int, float))]
    vals = np.array([[r[key] for r in recs if isinstance(r.get(key), (int, float))] for recs in records_per_seed])
    return np.array(steps), vals.mean(axis=0), vals.std(axis=0)


def plot_schedules(results: dict, path: str) -> str:
    """Panels: the learning rate per step, train loss and test accuracy (mean over seeds, band = ±std)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for name, res in results.items():
        first = res[0]
        lr = first.per_step["lr"][0]
        (line,) = axes[0].plot(np.arange(lr.size), lr, lw=1.2, label=name)
        for ax, key in ((axes[1], "train_loss"), (axes[2], "test_accuracy")):
            x, m, s = _mean_curve(first.records, key)
            ax.plot(x, m, lw=1.2, color=line.get_color())
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.15)
    axes[0].set_title("learning rate")
    axes[1].set_title("train loss")
    axes[1].set_yscale("log")
    axes[2].set_title("test accuracy")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=min(len(results), 6), fontsize=9,
               bbox_to_anchor=(0.5, 1.08))
    return save(fig, path)


def main(config, workdir):
    schedule_study(config, workdir)


if __name__ == "__main__":
    cli.main(main, __file__, check=check_schedule_study)
