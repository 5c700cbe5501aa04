"""PNG plots of run records: figures described as data, drawn in one call.

    figures = [Curves("loss_curves.png", runs, keys), Bands("loss_bands.png", bands, keys), Panels(...)]
    pngs = draw(figures)                      # {file name: PNG bytes}; jaxlab.io.write_outputs writes them
    save(fig, path, title)                    # an experiment's own matplotlib figure -> PNG file

Scripts get matplotlib's headless Agg backend; inside a notebook kernel (or with MPLBACKEND set) the backend is left
alone, so a notebook's own figures still show inline.
"""
from __future__ import annotations

import io
import math
import os
import sys
from typing import NamedTuple, Sequence

import matplotlib

if "ipykernel" not in sys.modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxlab.distributed import is_writer  # noqa: E402

LOG_KEYS = ("train_loss", "test_loss")


class Curves(NamedTuple):
    """One panel per metric key, one line per run. runs: [(label, records)]."""
    name: str
    runs: Sequence[tuple[str, Sequence[dict]]]
    keys: Sequence[str]
    logy: Sequence[str] = LOG_KEYS
    title: str = ""


class Bands(NamedTuple):
    """Mean ± std over seeds: one panel per metric key, one line and band per grid point.
    groups: [(label, {key: {"step", "mean", "std", "n"}})], the curves of ``jaxlab.stats.curve``."""
    name: str
    groups: Sequence[tuple[str, dict]]
    keys: Sequence[str]
    logy: Sequence[str] = LOG_KEYS
    title: str = ""


class Line(NamedTuple):
    x: Sequence[float]
    y: Sequence[float]
    color: str
    label: str | None = None


class Panel(NamedTuple):
    """One axis: its lines, dashed horizontal levels [(y, color)], and its title."""
    title: str
    lines: Sequence[Line]
    levels: Sequence[tuple[float, str]] = ()


class Panels(NamedTuple):
    """Panels side by side sharing the y axis (the legend on the last one)."""
    name: str
    panels: Sequence[Panel]
    ylabel: str
    logy: bool = False
    title: str = ""


def _layout(fig, title: str = "", title_y: float | None = None) -> None:
    if title:
        fig.suptitle(title, **({} if title_y is None else {"y": title_y}))
    fig.tight_layout()


def save(fig, path: str, title: str = "", title_y: float | None = None, tight_bbox: bool = True) -> str:
    """Title, layout, write the PNG and close the figure (figures are not kept open in scripts); -> path."""
    _layout(fig, title, title_y)
    if is_writer():  # process 0 of a multi-process run writes the files
        fig.savefig(path, dpi=120, **({"bbox_inches": "tight"} if tight_bbox else {}))
    plt.close(fig)
    return path


def _series(records: Sequence[dict], key: str):
    pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


def _curves(spec: Curves):
    keys = list(spec.keys)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, records in spec.runs:
            xs, ys = _series(records, key)
            if xs:
                ax.plot(xs, ys, label=label, lw=1.2)
        if key in spec.logy:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), fontsize=8,
                   bbox_to_anchor=(0.5, 1.0 + 0.06 * (1 + (len(labels) - 1) // 6)))
    return fig, 1.08


def _bands(spec: Bands):
    keys = list(spec.keys)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (label, curves) in enumerate(spec.groups):
            c = curves.get(key)
            if c is None or len(c["step"]) == 0:
                continue
            color = f"C{i % 10}"
            ax.plot(c["step"], c["mean"], color=color, lw=1.3, label=label)
            lo, hi = c["mean"] - c["std"], c["mean"] + c["std"]
            if key in spec.logy:  # a band reaching below zero cannot be drawn on a log axis
                lo = [max(v, m * 1e-3) for v, m in zip(lo, c["mean"])]
            ax.fill_between(c["step"], lo, hi, color=color, alpha=0.25, lw=0)
        if key in spec.logy:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{key} (mean ± std over seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8,
                   bbox_to_anchor=(0.5, 1.0))
    return fig, 1.12


def _panels(spec: Panels):
    n = len(spec.panels)
    fig, axes = plt.subplots(1, n, figsize=(max(6.0, 3.6 * n), 3.6), squeeze=False, sharey=True)
    for ax, panel in zip(axes[0], spec.panels):
        for line in panel.lines:
            ax.plot(line.x, line.y, color=line.color, lw=1.1, label=line.label)
        for y, color in panel.levels:
            ax.axhline(y, color=color, ls="--", lw=1.0)
        if spec.logy:
            ax.set_yscale("log")
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(spec.ylabel)
    if axes[0][-1].get_legend_handles_labels()[0]:   # nothing drawn (no such key measured): no empty legend
        axes[0][-1].legend(fontsize=8)
    return fig, None


DRAW = {Curves: _curves, Bands: _bands, Panels: _panels}


def draw(figures: Sequence[Curves | Bands | Panels]) -> dict[str, bytes]:
    """Each figure drawn, titled and rendered -> {its file name: PNG bytes} (figures are closed)."""
    out = {}
    for spec in figures:
        fig, title_y = DRAW[type(spec)](spec)
        _layout(fig, spec.title, title_y)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        out[spec.name] = buf.getvalue()
    return out
