"""Edge of stability and weight decay (full-batch GD). Config: experiments/configs/eos_weight_decay.py.

    python -m experiments.eos_weight_decay --workdir runs/eos

Writes config.json, metrics.jsonl, summary.json (grid statistics, "eos" per run, tracking cost),
eos_sharpness.png, eos_loss.png, loss_curves.png and loss_bands.png, and prints the per-run table.
"""
from __future__ import annotations

from jaxlab import cli
from jaxlab.eos import eos_report
from jaxlab.io import write_outputs
from jaxlab.plots import draw
from jaxlab.sweep import sweep

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Edge of stability and weight decay (full-batch GD)"
CPU_TIME = "2 min 10 s wall on 2 idle cores (MLP), ~2 min (CNN)"


def write_eos_outputs(results, workdir: str, print_table: bool = True, title: str = "", claim=None) -> dict:
    """The experiment's outputs in one walk: per-run summaries and the tracking cost (``jaxlab.eos.eos_report``),
    then the plots (``jaxlab.plots.draw``), then the files (``jaxlab.io.write_outputs``): summary.json, eos_sharpness,
    eos_loss, [eos_ntk], loss_curves and loss_bands PNGs. Prints the per-run table. Returns the summary.
    claim(eos rows) -> dict: an experiment's verdict on its claim, stored in summary.json under "claim"."""
    report = eos_report(results, title=title, claim=claim)
    write_outputs(workdir, report.summary, draw(report.figures))
    if print_table:
        print(report.text)
    return report.summary


def main(config, workdir):
    results = sweep(config, workdir=workdir)
    write_eos_outputs(results, workdir)


if __name__ == "__main__":
    cli.main(main, __file__)
