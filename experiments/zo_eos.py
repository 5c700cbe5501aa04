"""Zeroth-order GD at the edge of stability, against GD. Config: experiments/configs/zo_eos.py.

    python -m experiments.zo_eos --workdir runs/zo_eos

Full-batch ZO-GD (two-point Gaussian estimate, n directions) and GD over the same step sizes (two sweeps: the ZO
quantities are declared by the ZO optimiser only). Tracked: λ1, the Hutchinson trace, and for ZO-GD its effective
sharpness 2/η*(H) from the dense spectrum (its mean-square stability boundary, jaxlab.curvature.zo_stability, on
the positive part of the spectrum) with its bounds from λ1 and the positive trace. Claims checked and written to
summary.json["claim"]: (1) at the largest step ZO-GD settles at its predicted boundary: the ratio η/η*(H) passes
the plateau test over the last half (jaxlab.plateau: its change shown within ±10%) and its last-quarter mean is
within 15% of 1; (2) ZO-GD's last-quarter tr H is below GD's at the same η; (3) it falls as η grows. Plots:
zo_boundary.png (2/η*(H) vs step, dashed 2/η), zo_vs_gd.png (last-quarter λ1 and tr H against η), and
loss_curves.png, loss_bands.png.
"""
from __future__ import annotations

import os

import numpy as np

from jaxlab import cli
from jaxlab.eos import alive_records, eos_summary, plateau
from jaxlab.experiment import RunResult, write_grid_outputs
from jaxlab.io import MetricsWriter
from jaxlab.sweep import sweep
from jaxlab.grid import with_overrides
from jaxlab.plots import plt, save
from jaxlab.stats import markdown_table

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Zeroth-order GD at the edge of stability, against GD"
CPU_TIME = "~3 min (long: ~3 min)"

NAME, LR = "optim.name", "optim.lr"


def last_quarter(records, key: str):
    """Mean of ``key`` over the records in the last quarter of the run (None when never recorded)."""
    pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
    if not pts:
        return None
    last = pts[-1][0]
    return float(np.mean([v for s, v in pts if s >= 0.75 * last]))


def zo_plateau(records, lr: float) -> dict:
    """The plateau test (jaxlab.eos.plateau) of η/η*(H) = zo_sharpness·η/2 over the last half."""
    pts = [(r["step"], r["zo_sharpness"] * lr / 2) for r in records
           if isinstance(r.get("zo_sharpness"), (int, float)) and np.isfinite(r["zo_sharpness"])]
    return plateau(*zip(*pts)) if len(pts) > 1 else {"plateaued": False, "plateau_verdict": "undecided"}


def rows_of(results, config) -> list[dict]:
    """Per run: optimiser, lr, seed and the last-quarter λ1, tr H, 2/η*(H), its ratio to 2/η, and the plateau
    test of that ratio over the last half (ZO runs)."""
    out = []
    for r in results:
        recs = alive_records(r.result.records, r.result.summary)
        lr = r.coords.get(LR, config.optim.lr)
        name = r.coords.get(NAME, config.optim.name)
        eos = eos_summary([r])["eos"][0]
        zo = last_quarter(recs, "zo_sharpness")
        out.append({"optimizer": name, "lr": lr, "seed": r.coords["seed"],
                    "diverged": bool(r.result.summary.get("diverged")),
                    "lambda1": last_quarter(recs, "sharpness"), "trace": last_quarter(recs, "hessian_trace"),
                    "zo_sharpness": zo, "zo_ratio": None if zo is None else zo * lr / 2,
                    "gd_ratio": last_quarter(recs, "sharpness") and last_quarter(recs, "sharpness") * lr / 2,
                    "final_train_loss": r.result.summary.get("final_train_loss"),
                    "steps_to_reach": eos.get("steps_to_reach"),
                    **({f"zo_{k}": v for k, v in zo_plateau(recs, lr).items()} if zo is not None else {})})
    return out


def claims(rows) -> dict:
    """The experiment's verdicts, each with the numbers behind it (``holds`` may well be False: a result too)."""
    zo = sorted((r for r in rows if r["optimizer"] == "zo_sgd" and not r["diverged"]), key=lambda r: r["lr"])
    gd = {r["lr"]: r for r in rows if r["optimizer"] == "sgd" and not r["diverged"]}
    ratios = {f"lr={r['lr']:g}": r["zo_ratio"] for r in zo}
    top = zo[-1] if zo else {}
    traces = [r["trace"] for r in zo if r["trace"] is not None]        # None: the trace was not tracked
    below = {f"lr={r['lr']:g}": (r["trace"], gd[r["lr"]]["trace"]) for r in zo
             if r["lr"] in gd and r["trace"] is not None and gd[r["lr"]]["trace"] is not None}
    near = top.get("zo_ratio") is not None and abs(top["zo_ratio"] - 1) <= 0.15
    return {"zo_settles_at_boundary_at_largest_lr": {
                "ratio_eta_over_eta_star": ratios, "plateau_verdict": top.get("zo_plateau_verdict"),
                "plateau_change_last_half": top.get("zo_plateau_change"), "near_boundary": near,
                "holds": bool(near and top.get("zo_plateaued"))},
            "zo_trace_below_gd_at_same_lr": {"zo_vs_gd_trace": below,
                                             "holds": bool(below) and all(a < b for a, b in below.values())},
            "zo_trace_falls_with_lr": {"traces": traces,
                                       "holds": len(traces) > 1 and all(a > b for a, b in zip(traces, traces[1:]))}}


def plot_boundary(results, config, path: str) -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    lrs = sorted({r.coords.get(LR, config.optim.lr) for r in results})
    for r in results:
        if r.coords.get(NAME, config.optim.name) != "zo_sgd":
            continue
        lr = r.coords.get(LR, config.optim.lr)
        color = f"C{lrs.index(lr) % 10}"
        pts = [(x["step"], x["zo_sharpness"]) for x in r.result.records if np.isfinite(x.get("zo_sharpness", np.nan))]
        if pts:
            ax.plot(*zip(*pts), color=color, lw=1.2, label=f"η={lr:g}")
        ax.axhline(2 / lr, color=color, ls="--", lw=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("ZO effective sharpness 2/η*(H) (dashed: 2/η)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path, f"ZO-GD (n={config.optim.zo_directions}) at its stability boundary")


def plot_vs_gd(rows, path: str) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in zip(axes, ("lambda1", "trace"), ("λ1 (last quarter)", "tr H (last quarter)")):
        for opt, marker in (("sgd", "o-"), ("zo_sgd", "s-")):
            pts = sorted((r["lr"], r[key]) for r in rows if r["optimizer"] == opt and r[key] is not None
                         and not r["diverged"])
            if pts:
                ax.plot(*zip(*pts), marker, label={"sgd": "GD", "zo_sgd": "ZO-GD"}[opt])
        if key == "lambda1":
            lrs = np.asarray(sorted({r["lr"] for r in rows}))
            ax.plot(lrs, 2 / lrs, "k--", lw=0.8, label="2/η")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step size η")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return save(fig, path, "last-quarter λ1 and tr H against the step size: GD vs ZO-GD")


def gd_config(config):
    """The GD comparison: the same grid and tracking without the quantities only a ZO optimiser declares."""
    names = config.curvature.quantities
    names = tuple(q.strip() for q in names.split(",")) if isinstance(names, str) else tuple(names)
    return with_overrides(config, {NAME: "sgd", "curvature.quantities": tuple(
        q for q in names if q not in ("zo_stability", "zo_dense"))})


def main(config, workdir):
    writer = MetricsWriter(workdir)
    results = []
    for c in (config, gd_config(config)):   # each run's records and coordinates tagged with its optimiser
        runs = sweep(c, writer=writer.with_extra({"optimizer": c.optim.name}))
        results += [RunResult({NAME: c.optim.name, **r.coords}, r.result) for r in runs]
    writer.close()
    rows = rows_of(results, config)
    verdict = claims(rows)
    write_grid_outputs(results, workdir, extra_summary={"zo_eos": rows, "claim": verdict},
                       keys=("train_loss", "sharpness", "hessian_trace"))
    plot_boundary(results, config, os.path.join(workdir, "zo_boundary.png"))
    plot_vs_gd(rows, os.path.join(workdir, "zo_vs_gd.png"))
    cols = [("optimizer", "optimizer"), ("lr", "lr"), ("λ1", "lambda1"), ("tr H", "trace"),
            ("2/η*(H)", "zo_sharpness"), ("η/η*", "zo_ratio"), ("λ1/(2/η)", "gd_ratio"),
            ("train loss", "final_train_loss")]

    print(markdown_table(rows, cols))
    print(f"claim: {verdict}")


if __name__ == "__main__":
    cli.main(main, __file__)
