"""Plots of curvature summaries (the backend policy is jaxlab.plots': Agg in scripts, inline in notebooks)."""
from __future__ import annotations

import numpy as np

from jaxlab.plots import is_writer, plt


def plot_density(grid, density, path: str, title: str = "Hessian spectral density (SLQ)", log: bool = True,
                 marks: dict | None = None):
    """Save the SLQ density (grid [G], density [G]) to ``path``; marks: {label: x} drawn as dashed verticals
    (e.g. {"2/η": 2 / lr})."""
    grid, density = np.asarray(grid), np.asarray(density)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(grid, np.maximum(density, 1e-12) if log else density, lw=1.2)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(1e-8, float(density.max()) * 1e-8))
    for i, (label, x) in enumerate((marks or {}).items()):
        ax.axvline(float(x), ls="--", color=f"C{i + 1}", label=label)
    if marks:
        ax.legend()
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title(title)
    fig.tight_layout()
    if is_writer():  # process 0 of a multi-process run
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
