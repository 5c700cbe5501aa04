"""Generalization at the edge of stability: the sharpness dimension against the generalization gap, and through
grokking (Tuci, Korkmaz, Şimşekli & Birdal, 2026, arXiv:2604.19740). Configs: experiments/configs/gen_eos*.py.

    python -m experiments.gen_eos --workdir runs/gen_eos                                   # the Kendall grid
    python -m experiments.gen_eos --config=experiments/configs/gen_eos_grokking.py --workdir runs/grok
    python -m experiments.gen_eos --config=experiments/configs/gen_eos_paper.py --workdir runs/gen_eos_paper

gen.mode = "kendall": a grid of sweep.axes × seeds (one vmapped program per structural group, over mesh.runs), each
run measured at its end. Per measure (gen.measures, name=record key): Kendall's τ-b with the loss gap (test −
train loss) and with the accuracy gap (train − test accuracy) over all runs, and Jiang et al.'s granulated
coefficient Ψ over the axes (jaxlab.stats.granulated_kendall; seeds are grouping coordinates). Controls for
trivial explanations: τ of each measure and of the gap with every axis and with the train loss, and the SLQ
dimension's error against the dense one. summary.json: kendall.<measure>, controls, slq_vs_dense, claim, runs.
Plots: scatter_<measure>.png (measure vs loss gap, colour = lr, marker = the other axis), loss curves/bands.

gen.mode = "grokking": one run per seed tracked through training; summary.json["grokking"]: the steps where train
accuracy reaches gen.fit_accuracy and test accuracy gen.grok_accuracy, and where each tracked curvature measure
moves most relative to them. Plot: grokking.png (accuracies; sharpness dimension; λ1 and tr H, against step).
"""
from __future__ import annotations

import math
import os

import numpy as np

from jaxlab import cli
from jaxlab.config import ConfigError, require, require_choice
from jaxlab.experiment import run_grid, write_grid_outputs
from jaxlab.grid import parse_axes
from jaxlab.plots import plt, save
from jaxlab.stats import granulated_kendall, kendall, markdown_table, stats

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = ("Generalization at the edge of stability: the sharpness dimension against the "
           "generalization gap, and through grokking")
CPU_TIME = "4.6 min wall (16 runs; grokking 1.9 min)"

MODES = ("kendall", "grokking")
GAPS = {"gap": "loss gap (test − train)", "accuracy_gap": "accuracy gap (train − test)"}


def parse_measures(spec: str) -> dict[str, str]:
    """'name=key,name2=key2' -> {name: record key}."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" not in part:
            raise ConfigError(f"config.gen.measures={spec!r}: {part!r} is not of the form name=record_key")
        name, key = (s.strip() for s in part.split("=", 1))
        out[name] = key
    return out


def check(config):
    """Bad gen.* values: one line naming the key (exit 2), before any compute."""
    g = config.gen
    require_choice("gen.mode", g.mode, MODES)
    measures = parse_measures(g.measures)
    require(len(measures) > 0, "gen.measures", g.measures, "must name at least one name=record_key")
    require(config.curvature.every > 0, "curvature.every", config.curvature.every, "must be > 0: the measures are "
            "curvature records")
    for key in ("fit_accuracy", "grok_accuracy"):
        require(0 < g[key] <= 1, f"gen.{key}", g[key], "must be in (0, 1]")
    if g.mode == "kendall":
        require(g.claim_measure in measures, "gen.claim_measure", g.claim_measure, f"must be one of {list(measures)}")
        for name in filter(None, (s.strip() for s in g.claim_against.split(","))):
            require(name in measures, "gen.claim_against", g.claim_against, f"{name!r} is not in {list(measures)}")
        axes = parse_axes(config.sweep.axes, config)
        require(len(axes) > 0, "sweep.axes", config.sweep.axes, "must vary at least one hyperparameter (kendall)")
        n = config.sweep.seeds * math.prod(len(v) for v in axes.values())
        require(n >= 3, "sweep.seeds", config.sweep.seeds, f"gives {n} runs: Kendall's τ needs at least 3")


# ------------------------------------------------------------------------------------------------ kendall

def final_record(records) -> dict:
    """The last record with a test evaluation and curvature (the end of the run)."""
    return records[-1] if records else {}


def rows_of(results, config) -> list[dict]:
    """Per run: its coordinates, the final losses and gaps, and every measure (NaN when not recorded)."""
    measures = parse_measures(config.gen.measures)
    rows = []
    for r in results:
        f = final_record(r.result.records)
        num = lambda k: float(f[k]) if isinstance(f.get(k), (int, float)) else float("nan")  # noqa: E731
        lr = float(r.coords.get("optim.lr", config.optim.lr))
        row = {**r.coords, "diverged": bool(r.result.summary.get("diverged")),
               "train_loss": num("train_loss"), "test_loss": num("test_loss"),
               "train_accuracy": num("train_accuracy"), "test_accuracy": num("test_accuracy"),
               "edge_ratio": num("sharpness") * lr / 2}                    # λ1 / (2/η): 1 at GD's edge
        row["gap"] = row["test_loss"] - row["train_loss"]
        row["accuracy_gap"] = row["train_accuracy"] - row["test_accuracy"]
        row.update({name: num(key) for name, key in measures.items()})
        rows.append(row)
    return rows


def kendall_summary(rows, measures, axes) -> dict:
    """{measure: τ with each gap over all runs, and the granulated Ψ (with ψ per axis)} over the live runs."""
    ok = [r for r in rows if not r["diverged"]]
    out = {}
    for name in measures:
        m = [r[name] for r in ok]
        entry = {"n": int(sum(np.isfinite(m)))}
        for gap in GAPS:
            g = granulated_kendall(ok, name, gap, axes)
            entry.update({f"tau_{gap}": kendall(m, [r[gap] for r in ok]), f"psi_{gap}": g["psi"],
                          f"psi_{gap}_per_axis": g["per_axis"]})
        entry["tau"], entry["psi"] = entry["tau_gap"], entry["psi_gap"]      # the headline: the loss gap
        out[name] = entry
    return out


def controls(rows, measures, axes) -> dict:
    """Trivial explanations: does a measure (or the gap) just follow a hyperparameter, or the train loss?"""
    ok = [r for r in rows if not r["diverged"]]
    col = lambda k: [r[k] for r in ok]  # noqa: E731
    out = {f"tau_{gap}_vs_{ax}": kendall(col(gap), col(ax)) for gap in GAPS for ax in axes}
    for name in measures:
        for ax in axes:
            out[f"tau_{name}_vs_{ax}"] = kendall(col(name), col(ax))
        out[f"tau_{name}_vs_train_loss"] = kendall(col(name), col("train_loss"))
    out["tau_gap_vs_train_loss"] = kendall(col("gap"), col("train_loss"))
    return out


def slq_vs_dense(rows, dense="sharpness_dim", slq="sharpness_dim_slq") -> dict | None:
    """|D_slq − D_dense| over the runs, absolute and relative to D_dense."""
    pairs = [(r[dense], r[slq]) for r in rows if not r["diverged"] and np.isfinite(r.get(dense, np.nan))
             and np.isfinite(r.get(slq, np.nan))]
    if not pairs:
        return None
    d, s = np.asarray(pairs).T
    return {"abs_error": stats(np.abs(s - d).tolist()), "rel_error": stats((np.abs(s - d) / np.abs(d)).tolist()),
            "tau_slq_vs_dense": kendall(d, s)}


def claim(table, gen) -> dict:
    """The paper's claim: the sharpness dimension's τ (and Ψ) with the loss gap are positive and exceed those of
    the others (a negative τ "above" more negative ones ranks nothing)."""
    me = table[gen.claim_measure]
    others = [s.strip() for s in gen.claim_against.split(",") if s.strip()]
    out = {"measure": gen.claim_measure, "against": others}
    for stat in ("tau", "psi"):
        vals = {n: table[n][stat] for n in [gen.claim_measure, *others]}
        out[stat] = vals
        out[f"{stat}_holds"] = bool(np.isfinite(me[stat]) and me[stat] > 0 and all(np.isfinite(v) and me[stat] > v
                                                                  for n, v in vals.items() if n != gen.claim_measure))
    out["holds"] = out["tau_holds"] and out["psi_holds"]
    return out


def plot_scatter(rows, name: str, axes: list[str], entry: dict, path: str) -> str:
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    lr_axis = "optim.lr" if "optim.lr" in axes else axes[0]
    other = next((a for a in axes if a != lr_axis), None)
    lrs = sorted({r[lr_axis] for r in rows})
    others = sorted({r[other] for r in rows}) if other else [None]
    for r in rows:
        if r["diverged"] or not np.isfinite(r[name]):
            continue
        c = f"C{lrs.index(r[lr_axis]) % 10}"
        mk = "os^vDP*X"[others.index(r[other]) % 8] if other else "o"
        ax.scatter(r[name], r["gap"], color=c, marker=mk, s=28)
    for i, v in enumerate(lrs):
        ax.scatter([], [], color=f"C{i % 10}", marker="o", label=f"{lr_axis.split('.')[-1]}={v:g}")
    for j, v in enumerate(others if other else []):
        ax.scatter([], [], color="gray", marker="os^vDP*X"[j % 8], label=f"{other.split('.')[-1]}={v}")
    ax.set_xlabel(name)
    ax.set_ylabel(GAPS["gap"])
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save(fig, path, f"{name}: τ = {entry['tau']:.3f}, Ψ = {entry['psi']:.3f}")


def kendall_main(results, config, workdir):
    measures = list(parse_measures(config.gen.measures))
    axes = list(parse_axes(config.sweep.axes, config))
    rows = rows_of(results, config)
    table = kendall_summary(rows, measures, axes)
    extra = {"kendall": table, "controls": controls(rows, measures, axes), "slq_vs_dense": slq_vs_dense(rows),
             "claim": claim(table, config.gen), "runs_table": rows}
    write_grid_outputs(results, workdir, extra_summary=extra, keys=("train_loss", "test_loss"))
    for name in measures:
        plot_scatter(rows, name, axes, table[name], os.path.join(workdir, f"scatter_{name}.png"))
    cols = [(ax.split(".")[-1], ax) for ax in axes] + [("seed", "seed"), ("gap", "gap"), ("acc gap", "accuracy_gap"),
                                                        ("λ1/(2/η)", "edge_ratio")] + [(m, m) for m in measures]
    print(markdown_table(rows, cols))
    print(markdown_table([{"measure": m, **table[m]} for m in measures],
                         [("measure", "measure"), ("τ (loss gap)", "tau_gap"), ("Ψ (loss gap)", "psi_gap"),
                          ("τ (acc gap)", "tau_accuracy_gap"), ("Ψ (acc gap)", "psi_accuracy_gap")]))
    print(f"claim: {extra['claim']}")
    print(f"slq vs dense: {extra['slq_vs_dense']}")


# ------------------------------------------------------------------------------------------------ grokking

def series(records, key):
    return [(r["step"], float(r[key])) for r in records
            if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]


def first_step(pts, level: float):
    return next((s for s, v in pts if v >= level), None)


def biggest_move(pts):
    """(step after the largest |change| between consecutive measurements, that change); (None, None) if < 2."""
    if len(pts) < 2:
        return None, None
    d = [(b[0], b[1] - a[1]) for a, b in zip(pts, pts[1:])]
    s, v = max(d, key=lambda x: abs(x[1]))
    return s, v


def value_at(pts, step):
    """The measurement at or just before ``step``."""
    before = [v for s, v in pts if step is not None and s <= step]
    return before[-1] if before else None


def grokking_summary(records, config) -> dict:
    g = config.gen
    train, test = series(records, "train_accuracy"), series(records, "test_accuracy")
    t_fit, t_grok = first_step(train, g.fit_accuracy), first_step(test, g.grok_accuracy)
    out = {"step_train_fitted": t_fit, "step_test_generalised": t_grok,
           "delay": None if t_fit is None or t_grok is None else t_grok - t_fit,
           "groks": bool(t_fit is not None and t_grok is not None and t_grok > t_fit),
           "final_train_accuracy": train[-1][1] if train else None,
           "final_test_accuracy": test[-1][1] if test else None}
    for name, key in parse_measures(g.measures).items():
        pts = series(records, key)
        step, change = biggest_move(pts[1:])               # from the first trained measurement on
        out[name] = {"at_start": pts[0][1] if pts else None, "at_train_fitted": value_at(pts, t_fit),
                     "at_test_generalised": value_at(pts, t_grok), "final": pts[-1][1] if pts else None,
                     "biggest_move_step": step, "biggest_move": change,
                     "moves_relative_to_jump": None if step is None or t_grok is None else
                     ("before" if step < t_grok else "at" if step == t_grok else "after")}
    return out


def plot_grokking(records, config, path: str) -> str:
    measures = parse_measures(config.gen.measures)
    fig, axes = plt.subplots(3, 1, figsize=(6.4, 7.2), sharex=True)
    for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
        axes[0].plot(*zip(*series(records, key)), label=label)
    axes[0].set_ylabel("accuracy")
    dims = [(n, k) for n, k in measures.items() if n.startswith("sharpness_dim")]
    for n, k in dims:
        if series(records, k):
            axes[1].plot(*zip(*series(records, k)), marker=".", label=n)
    axes[1].set_ylabel("sharpness dimension")
    for n, k in measures.items():
        if (n, k) not in dims and series(records, k) and n in ("lambda1", "lambda1_preconditioned", "trace"):
            axes[2].plot(*zip(*series(records, k)), marker=".", label=n)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("λ1, tr H")
    axes[2].set_xlabel("step")
    for a in axes:
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    return save(fig, path, f"grokking: {config.data.name} p={config.data.modulus}")


def grokking_main(results, config, workdir):
    per_run = [{**r.coords, **grokking_summary(r.result.records, config)} for r in results]
    write_grid_outputs(results, workdir, extra_summary={"grokking": per_run},
                       keys=("train_accuracy", "test_accuracy"))
    plot_grokking(results[0].result.records, config, os.path.join(workdir, "grokking.png"))
    for row in per_run:
        print(row)


def main(config, workdir):
    results = run_grid(config, workdir)
    (grokking_main if config.gen.mode == "grokking" else kendall_main)(results, config, workdir)


if __name__ == "__main__":
    cli.main(main, __file__, check=check)
