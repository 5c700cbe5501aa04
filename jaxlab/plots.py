"""PNG plots of run records; every function returns the path.

Scripts get matplotlib's headless Agg backend; inside a notebook kernel (or with MPLBACKEND set) the backend is left
alone, so a notebook's own figures still show inline.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Sequence

import matplotlib

if "ipykernel" not in sys.modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxlab.distributed import is_writer  # noqa: E402


def save(fig, path: str, title: str = "", title_y: float | None = None, tight_bbox: bool = True) -> str:
    """Title, layout, write the PNG and close the figure (figures are not kept open in scripts); -> path."""
    if title:
        fig.suptitle(title, **({} if title_y is None else {"y": title_y}))
    fig.tight_layout()
    if is_writer():  # process 0 of a multi-process run writes the files
        fig.savefig(path, dpi=120, **({"bbox_inches": "tight"} if tight_bbox else {}))
    plt.close(fig)
    return path


def _series(records: Sequence[dict], key: str):
    pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(runs: Sequence[tuple[str, Sequence[dict]]], keys: Sequence[str], path: str,
                logy: Sequence[str] = ("train_loss", "test_loss"), title: str = "") -> str:
    """One panel per metric key, one line per run. runs: [(label, records)]."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, records in runs:
            xs, ys = _series(records, key)
            if xs:
                ax.plot(xs, ys, label=label, lw=1.2)
        if key in logy:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), fontsize=8,
                   bbox_to_anchor=(0.5, 1.0 + 0.06 * (1 + (len(labels) - 1) // 6)))
    return save(fig, path, title, title_y=1.08)


def plot_bands(groups: Sequence[tuple[str, dict]], keys: Sequence[str], path: str,
               logy: Sequence[str] = ("train_loss", "test_loss"), title: str = "") -> str:
    """Mean ± std over seeds: one panel per metric key, one line and band per grid point.

    groups: [(label, {key: {"step", "mean", "std", "n"}})], the curves of ``jaxlab.sweep.aggregate.curve``.
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (label, curves) in enumerate(groups):
            c = curves.get(key)
            if c is None or len(c["step"]) == 0:
                continue
            color = f"C{i % 10}"
            ax.plot(c["step"], c["mean"], color=color, lw=1.3, label=label)
            lo, hi = c["mean"] - c["std"], c["mean"] + c["std"]
            if key in logy:  # a band reaching below zero cannot be drawn on a log axis
                lo = [max(v, m * 1e-3) for v, m in zip(lo, c["mean"])]
            ax.fill_between(c["step"], lo, hi, color=color, alpha=0.25, lw=0)
        if key in logy:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{key} (mean ± std over seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8,
                   bbox_to_anchor=(0.5, 1.0))
    return save(fig, path, title, title_y=1.12)
