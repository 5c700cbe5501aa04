"""Stability of any optimiser from its own step: the flip multiplier of the real update map against each closed-form
threshold. Config: experiments/configs/step_stability.py.

    python -m experiments.step_stability --workdir runs/step_stability

For each method (GD, heavy ball, Nesterov, Adam, AdamW): train full batch with the flip multiplier tracked (the
leftmost eigenvalue of J, the Jacobian of one real step on parameters and optimiser state; −1 is the edge of
stability), then at the final state find by bisection the learning rate at which it reaches −1 and compare it
with the declared closed form (η* = threshold·η / λ1 of the declared operator): 2/λ1, (2+2β)/λ1,
(2+2β)/((1+2β)λ1), and for Adam with its preconditioner frozen 38/λ1(P⁻¹H). Adam's real step (its preconditioner
moves with the gradient) and AdamW have no formula here: what is measured is reported beside the frozen one.
summary.json: thresholds.<name>.{measured, closed_form, ratio}, hover.<method> (the tracked flip multiplier's
last-half mean and plateau test), runs.<method> (the run summary). Plots: step_flip.png, thresholds.png.
"""
from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import cli, optim
from jaxlab import data as data_lib
from jaxlab.config import require, require_choice
from jaxlab.curvature import lanczos, make_hvp, preconditioned_matvec
from jaxlab.curvature.step_map import flip_multiplier, linearize_step, real_step
from jaxlab.grid import with_overrides
from jaxlab.io import MetricsWriter, write_summary
from jaxlab.plateau import plateau_test
from jaxlab.plots import plt, save
from jaxlab.stats import markdown_table
from jaxlab.train import make_train, run

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = ("Stability of any optimiser from its own step: the flip multiplier of the real update "
           "against each closed form")
CPU_TIME = "~2 min"

# label -> optim overrides (the training lr comes from config.stability.lr.<label>)
METHODS = {
    "sgd": {"optim.name": "sgd"},
    "momentum": {"optim.name": "momentum", "optim.nesterov": False},
    "nesterov": {"optim.name": "momentum", "optim.nesterov": True},
    "adam": {"optim.name": "adam", "optim.weight_decay": 0.0},
    "adamw": {"optim.name": "adam", "optim.wd_variant": "decoupled"},
}


def methods(config) -> list[str]:
    return [m.strip() for m in config.stability.methods.split(",") if m.strip()]


def check(config):
    """Bad stability.* values: one line naming the key (exit 2), before any compute."""
    s = config.stability
    names = methods(config)
    require(len(names) > 0, "stability.methods", s.methods, "must name at least one method")
    for m in names:
        require_choice("stability.methods", m, METHODS)
        lr = s.lr.get(m)
        require(isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0, f"stability.lr.{m}", lr,
                "must be a finite number > 0")
    require(s.arnoldi_iters >= 2, "stability.arnoldi_iters", s.arnoldi_iters, "must be >= 2")
    require(s.bisect_iters >= 1, "stability.bisect_iters", s.bisect_iters, "must be >= 1")
    require(0 < s.tolerance < 1, "stability.tolerance", s.tolerance, "must be in (0, 1)")
    require(s.adamw_weight_decay >= 0, "stability.adamw_weight_decay", s.adamw_weight_decay, "must be >= 0")


def method_config(config, label: str):
    point = {**METHODS[label], "optim.lr": float(config.stability.lr[label])}
    if label == "adamw":
        point["optim.weight_decay"] = float(config.stability.adamw_weight_decay)
    return with_overrides(config, point)


# ------------------------------------------------------------------------------------------------ thresholds

def bisect_lr(flip, lr0: float, iters: int) -> float | None:
    """The η where flip(η) crosses −1 (flip decreasing in η): widen [lo, hi] from lr0 by ×2 until it brackets
    the crossing, then bisect on log η. None when no crossing is found within 2^±30."""
    lo = hi = lr0
    for _ in range(30):
        if flip(hi) <= -1.0:
            break
        lo, hi = hi, hi * 2.0
    else:
        return None
    for _ in range(30):
        if flip(lo) > -1.0:
            break
        lo, hi = lo / 2.0, lo
    else:
        return None
    for _ in range(iters):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if flip(mid) > -1.0 else (lo, mid)
    return math.sqrt(lo * hi)


def thresholds_at(config, dataset, state, iters: int, bisect_iters: int) -> dict:
    """At the final state: {name: {measured, closed_form, ratio, ...}} for the real step and, when the optimiser
    declares a frozen preconditioner, for the frozen step ("<method>_frozen" is added by the caller)."""
    trainer = make_train(config, dataset)
    data = trainer.device_data(dataset)
    batch = (data["x_curv"], data["y_curv"])
    params, opt_state = state.params, state.opt_state
    loss = lambda p: trainer.loss_fn(p, batch)  # noqa: E731
    declared = optim.declaration(config.optim)
    numbers = optim.resolve(config.optim)
    key = jax.random.PRNGKey(config.curvature.seed)
    steps = config.train.steps
    P = None
    if declared.preconditioner is not None:
        g = optim.make_step(config.optim, steps).gradient(loss, params, key)
        P = declared.preconditioner(opt_state, g, numbers)
    mv = make_hvp(trainer.loss_fn, params, batch, linearize=True)
    lam = float(lanczos(mv if P is None else preconditioned_matvec(mv, P), params, key, iters, k=1)[0][0])
    # every declared threshold is c/η: the crossing of λ1(operator) is η* = threshold(η = 1)/λ1
    closed = float(declared.threshold(numbers._replace(lr=1.0))) / lam if declared.threshold is not None else None

    @jax.jit
    def flips(lr):
        step = optim.make_step(config.optim, steps, {"lr": lr})
        real = flip_multiplier(linearize_step(real_step(step, loss, key), params, opt_state), key, iters)[0]
        if P is None:
            return real, real
        frozen_update = step.frozen_update(P)
        lin = linearize_step(real_step(step, loss, key, frozen_update), params, opt_state)
        return real, flip_multiplier(lin, key, iters)[0]

    lr0 = closed or float(config.optim.lr)
    real = bisect_lr(lambda lr: float(flips(jnp.float32(lr))[0]), lr0, bisect_iters)
    out = {"operator": declared.operator, "operator_lambda1": lam, "measured": real,
           "closed_form": None if P is not None else closed}
    out["ratio"] = real / closed if (real and closed and P is None) else None
    if P is not None:
        frozen = bisect_lr(lambda lr: float(flips(jnp.float32(lr))[1]), lr0, bisect_iters)
        out["frozen"] = {"operator": declared.operator, "operator_lambda1": lam, "measured": frozen,
                         "closed_form": closed, "ratio": frozen / closed if frozen and closed else None}
        out["relative_to_frozen_closed_form"] = real / closed if real and closed else None
    return out


# ------------------------------------------------------------------------------------------------ hovering

def hover(records, key: str, tolerance: float) -> dict:
    """Does ``key`` (a flip multiplier) hover at −1? Last-half mean within ``tolerance`` of −1, and the plateau
    test (jaxlab.plateau, relative change within the same tolerance) calls its last half plateaued."""
    pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if len(pts) < 2:
        return {"hovers": False, "reason": f"{key} not recorded"}
    steps, vals = map(np.asarray, zip(*pts))
    half = steps >= 0.5 * steps[-1]
    mean = float(vals[half].mean())
    p = plateau_test(steps, vals, frac=0.5, tolerance=tolerance)
    # timed from the flip's highest point in the first half: Adam's first step is far past its edge
    first = np.flatnonzero(steps <= 0.5 * steps[-1])
    top = int(first[np.argmax(vals[first])])
    reach = top + np.nonzero(vals[top:] <= -0.9)[0]
    return {"last_half_mean": mean, "last_half_std": float(vals[half].std()), "plateau_verdict": p["verdict"],
            "plateau_change": p.get("change"), "steps_to_reach_-0.9": int(steps[reach[0]]) if reach.size else None,
            "hovers": bool(abs(mean + 1.0) <= tolerance and p["plateaued"])}


# ------------------------------------------------------------------------------------------------ plots

def plot_flips(runs: dict, path: str) -> str:
    fig, axes = plt.subplots(1, len(runs), figsize=(3.4 * len(runs), 3.2), squeeze=False, sharey=True)
    for ax, (label, records) in zip(axes[0], runs.items()):
        for key, style in (("step_flip", "-"), ("step_flip_frozen", "--")):
            pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if pts:
                ax.plot(*zip(*pts), style, lw=1.1, label="real step" if key == "step_flip" else "P frozen")
        ax.axhline(-1.0, color="k", ls=":", lw=1.0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylim(-1.6, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("flip multiplier (leftmost eig. of J)")
    return save(fig, path, "the step map's flip multiplier during training (dotted: −1, the edge of stability)")


def plot_thresholds(rows: list[dict], path: str) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    names = [r["name"] for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["measured"] or 0 for r in rows], 0.4, label="measured (flip = −1)")
    ax.bar(x + 0.2, [r["closed_form"] or 0 for r in rows], 0.4, label="closed form")
    ax.set_xticks(x, names, rotation=20, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("critical learning rate η*")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return save(fig, path, "critical η at the trained state: flip multiplier vs closed form")


# ------------------------------------------------------------------------------------------------ main

def main(config, workdir):
    dataset = data_lib.get_dataset(config.data)
    stab = config.stability
    writer = MetricsWriter(workdir)
    runs, thresholds, hovers, run_summaries = {}, {}, {}, {}
    for label in methods(config):
        cfg = method_config(config, label)
        result = run(cfg, config.seed, writer=writer.with_extra({"method": label}), dataset=dataset)
        runs[label] = result.records
        run_summaries[label] = result.summary
        if result.summary.get("diverged"):
            thresholds[label] = {"measured": None, "closed_form": None, "ratio": None, "diverged": True}
            continue
        t = thresholds_at(cfg, dataset, result.state, stab.arnoldi_iters, stab.bisect_iters)
        frozen = t.pop("frozen", None)
        thresholds[label] = t
        if frozen is not None:
            thresholds[f"{label}_frozen"] = frozen
        hovers[label] = hover(result.records, "step_flip", stab.tolerance)
        if any("step_flip_frozen" in r for r in result.records):
            hovers[f"{label}_frozen"] = hover(result.records, "step_flip_frozen", stab.tolerance)
    writer.close()
    rows = [{"name": k, **v} for k, v in thresholds.items()]
    write_summary(workdir, {"thresholds": thresholds, "hover": hovers, "runs": run_summaries})
    plot_flips(runs, os.path.join(workdir, "step_flip.png"))
    plot_thresholds(rows, os.path.join(workdir, "thresholds.png"))
    cols = [("method", "name"), ("operator", "operator"), ("λ1(operator)", "operator_lambda1"),
            ("η* measured", "measured"), ("η* closed form", "closed_form"), ("ratio", "ratio")]
    print(markdown_table([{k: ("-" if v is None else v) for k, v in r.items()} for r in rows], cols))
    hcols = [("run", "name"), ("last-half mean flip", "last_half_mean"), ("plateau", "plateau_verdict"),
             ("hovers at −1", "hovers")]
    print(markdown_table([{"name": k, **v} for k, v in hovers.items()], hcols))


if __name__ == "__main__":
    cli.main(main, __file__, check=check)
