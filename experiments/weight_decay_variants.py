"""Weight-decay variants × λ × lr, vmapped over seeds. Config: experiments/configs/weight_decay_variants.py.

    python -m experiments.weight_decay_variants --workdir runs/wd
    out = weight_decay_study(config, workdir)    # {"rows": [...], "table": markdown, ...}

Writes metrics.jsonl (every record tagged with its run), summary.json, results.md and weight_decay_variants.png.
"""
from __future__ import annotations

import os

import numpy as np

from jaxlab.grid import with_overrides
from jaxlab import cli
from jaxlab import data as data_lib
from jaxlab.io import MetricsWriter
from jaxlab.plots import plt, save
from jaxlab.schema import validate
from jaxlab.stats import final_stats, markdown_table
from jaxlab.sweep.plan import seed_list
from experiments.optim_studies import (METRICS, curvature_keys, finish, run_points, split_axes,
                                       write_records)

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Weight-decay variants × λ × lr, vmapped over seeds"
CPU_TIME = "~2 min"


def check_weight_decay_study(config):
    """-> (variants, traced axes, {variant: config}); ConfigError naming the key before any compute (every
    variant's config is validated)."""
    variants, axes = split_axes(config, "optim.wd_variant", ("optim.weight_decay", "optim.lr"))
    configs = {v: with_overrides(config, {"optim.wd_variant": v, "optim.weight_decay": 0.0}) for v in variants}
    for cfg in configs.values():
        validate(cfg)
    return variants, axes, configs


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
        results = run_points(cfg, grid_axes, seed_list(config), dataset, desc=variant)
        for (lr, wd), res in zip(grid, results):
            write_records(writer, {"optim.wd_variant": variant}, res)
            keys = list(METRICS) + curvature_keys(res.records[0]) + _extra_keys(res.records[0][-1])
            rows.append({"variant": variant, "lr": lr, "weight_decay": wd,
                         "weight_decay_used": res.point["optim.weight_decay"], **final_stats([s[-1] for s in res.records], keys)})
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
        plot_weight_decay(rows, curves, os.path.join(workdir, "weight_decay_variants.png"))
    n = len(seed_list(config))
    return finish(workdir, rows, table, columns, f"Weight-decay variants (mean ± std over {n} seeds)")


def _extra_keys(record: dict) -> list[str]:
    return [k for k in ("cautious_fraction",) if k in record]


def plot_weight_decay(rows, curves, path: str) -> str:
    """Columns: learning rates. Rows: final test accuracy, train loss and ‖θ‖ against λ (mean ± std over seeds)."""
    lrs = sorted({r["lr"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    panels = [("test_accuracy", "test accuracy", False), ("train_loss", "train loss", True),
              ("param_norm", "‖θ‖", True)]
    fig, axes = plt.subplots(len(panels), len(lrs), figsize=(4.4 * len(lrs), 3.0 * len(panels)), squeeze=False)
    colors = dict(zip(variants, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for j, lr in enumerate(lrs):
        for i, (key, label, logy) in enumerate(panels):
            ax = axes[i][j]
            for v in variants:
                pts = sorted((r["weight_decay"], r[f"{key}_mean"], r[f"{key}_std"]) for r in rows
                             if r["variant"] == v and r["lr"] == lr)
                if not pts:
                    continue
                x, m, s = map(np.array, zip(*pts))
                if v == "none":  # λ = 0: a reference line across the λ axis
                    ax.axhline(m[0], color=colors[v], ls="--", lw=1, label=v)
                    ax.axhspan(m[0] - s[0], m[0] + s[0], color=colors[v], alpha=0.12)
                else:
                    ax.errorbar(x, m, yerr=s, marker="o", ms=3, capsize=2, color=colors[v], label=v)
            ax.set_xscale("log")
            if logy:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"peak lr = {lr:g}")
            if i == len(panels) - 1:
                ax.set_xlabel("λ  (independent runs with λ·lr_ref)")
            if j == 0:
                ax.set_ylabel(label)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, bbox_to_anchor=(0.5, 1.02))
    return save(fig, path)


def main(config, workdir):
    weight_decay_study(config, workdir)


if __name__ == "__main__":
    cli.main(main, __file__, check=check_weight_decay_study)
