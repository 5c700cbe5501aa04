"""Figures of the optimiser studies (matplotlib, Agg). Each function writes one PNG and returns its path."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


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
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
