"""WSM: warmup–stable lr + checkpoint merging vs WSD and cosine decay. Config: experiments/configs/wsm.py.

    python -m experiments.wsm --workdir runs/wsm
    out = wsm_study(config, workdir)   # {"rows": [...], "grid": [...], "table": markdown, "factors": {...}}

One vmapped sweep over ``optim.schedule.name`` (the config's schedule names: constant = warmup–stable, wsd,
cosine; same steps, peak lr and warmup) × seeds, checkpointed every ``checkpoint.every`` steps (kept forever).
Then, post hoc and streaming from the constant run's checkpoints, merges that end at the last step:
  - the grid: ``wsm.grid_scheme`` over checkpoint interval I × number of checkpoints N, i.e. merge
    duration D = (N − 1)·I (the three factors of the WSM paper);
  - the comparison at D = ``compare_duration``: every WSM shape, uniform and EMA, against WSD and cosine.
Losses are means ± std over seeds of the final train loss (the eval subset) and test loss/accuracy.
"""
from __future__ import annotations

import os

import numpy as np

from jaxlab import cli
from jaxlab.checkpoint import manager as mgr
from jaxlab.checkpoint.coefficients import WSM_SHAPES, coefficients
from jaxlab.checkpoint.merge import MergeError, merge_params, window_steps
from jaxlab.checkpoint.saver import checkpoint_dir, checkpoint_sets
from jaxlab.config import require
from jaxlab.evaluate import Evaluator
from jaxlab.experiment import write_grid_outputs
from jaxlab.plots import plt, save
from jaxlab.stats import markdown_table, mean_std
from jaxlab.sweep import sweep

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "WSM: warmup–stable lr + checkpoint merging vs WSD and cosine decay"
CPU_TIME = "~2 min"

KEYS = ("train_loss", "test_loss", "test_accuracy")


def check_study(config) -> None:
    s, every, steps = config.wsm, config.checkpoint.every, config.train.steps
    require(every > 0, "checkpoint.every", every, "the WSM study needs checkpoints (> 0)")
    for i in s.intervals:
        require(i > 0 and i % every == 0, "wsm.intervals", tuple(s.intervals),
                f"must be positive multiples of checkpoint.every={every}")
    require(all(n >= 2 for n in s.counts), "wsm.counts", tuple(s.counts), "must be >= 2")
    require(s.grid_scheme in WSM_SHAPES or s.grid_scheme == "uniform", "wsm.grid_scheme",
            s.grid_scheme, f"must be one of {sorted(WSM_SHAPES) + ['uniform']}")
    d = s.compare_duration
    require(0 < d < steps and d % every == 0, "wsm.compare_duration", d,
            f"must be a positive multiple of checkpoint.every={every} below train.steps={steps}")
    names = [n.strip() for n in s.schedules.split(",")]
    require("constant" in names, "wsm.schedules", s.schedules, "must include constant (the merged run)")
    require(not config.sweep.axes, "sweep.axes", config.sweep.axes,
            "the WSM study sweeps the schedules itself (wsm.schedules) over sweep.seeds; leave it empty")


def _row(label: str, metrics: dict, **extra) -> dict:
    return {"scheme": label, **extra, **{k: mean_std(np.atleast_1d(metrics[k])) for k in KEYS}}


def _fmt(s: dict) -> str:
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


def _sets_by_schedule(workdir: str) -> dict[str, str]:
    """{schedule name: checkpoint tag} from each set's recorded run coordinates."""
    out = {}
    for tag in checkpoint_sets(workdir):
        m = mgr.open_manager(checkpoint_dir(workdir, tag), read_only=True)
        meta = mgr.restore_meta(m, mgr.valid_steps(m)[-1])
        m.close()
        out[meta["runs"][0].get("optim.schedule.name")] = tag
    return out


def wsm_study(config, workdir: str) -> dict:
    check_study(config)
    s, every, steps = config.wsm, config.checkpoint.every, config.train.steps
    names = [n.strip() for n in s.schedules.split(",")]
    results = sweep(config, axes={"optim.schedule.name": names}, workdir=workdir)
    finals = {r.coords["optim.schedule.name"]: [] for r in results}
    for r in results:
        finals[r.coords["optim.schedule.name"]].append(r.result.records[-1])
    baseline_rows = [_row(n if n != "constant" else "constant (last checkpoint)",
                          {k: [rec[k] for rec in finals[n]] for k in KEYS}) for n in names]

    evaluate = Evaluator(config)
    _merge_eval = lambda m, steps, c: evaluate(merge_params(m, steps, c), stacked=True)  # noqa: E731
    tag = _sets_by_schedule(workdir)["constant"]
    m = mgr.open_manager(checkpoint_dir(workdir, tag), read_only=True)
    available = mgr.valid_steps(m)
    grid = []
    for interval in s.intervals:
        for n in s.counts:
            try:
                window = window_steps(available, n, interval)
            except MergeError:
                continue  # longer than the run: left out of the grid
            ev = _merge_eval(m, window, coefficients(s.grid_scheme, n))
            grid.append(_row(s.grid_scheme, ev, interval=interval, count=n, duration=(n - 1) * interval))
    d = s.compare_duration
    compare = []
    for scheme in list(WSM_SHAPES) + ["uniform"]:
        n = d // every + 1
        ev = _merge_eval(m, window_steps(available, n, every), coefficients(scheme, n))
        compare.append(_row(f"WSM {scheme}" if scheme != "uniform" else "uniform mean", ev, interval=every,
                            count=n, duration=d))
    for decay in s.ema_decays:  # per checkpoint; over the whole run (the window starts at the first checkpoint)
        n = len(available)
        ev = _merge_eval(m, window_steps(available, n, every), coefficients("ema", n, decay=decay))
        compare.append(_row(f"EMA d={decay:g}/ckpt (≈{every / (1 - decay):.0f} steps)", ev, interval=every, count=n))
    m.close()

    rows = baseline_rows + compare
    table = _table(rows, "train steps = %d, %d seeds; merges end at the last step" % (steps, config.sweep.seeds))
    grid_table = _grid_table(grid, s.intervals)
    factors = _factors(grid)
    text = (f"## Final loss per scheme (merge duration {d} steps)\n\n{table}\n\n"
            f"## {s.grid_scheme} merges: final train loss by duration (rows) and checkpoint interval (columns)\n\n"
            f"{grid_table}\n\n{factors['text']}\n")
    summary_extra = {"wsm": {"rows": rows, "grid": grid, "factors": factors, "table": text}}
    write_grid_outputs(results, workdir, extra_summary=summary_extra)
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(f"# WSM: warmup–stable + merge vs decay\n\n{text}")
    _plot(rows, grid, s.intervals, os.path.join(workdir, "wsm.png"))
    print(f"\n{text}")
    return {"rows": rows, "grid": grid, "factors": factors, "table": text}


def _table(rows, caption) -> str:
    columns = [("scheme", "scheme"),
               ("merged ckpts × interval", lambda r: f"{r['count']} × {r['interval']}" if "count" in r else "—"),
               ("train loss", lambda r: _fmt(r["train_loss"])), ("test loss", lambda r: _fmt(r["test_loss"])),
               ("test acc", lambda r: _fmt(r["test_accuracy"]))]
    return markdown_table(rows, columns) + f"\n\n({caption}; mean ± std over seeds)"


def _grid_table(grid, intervals) -> str:
    durations = sorted({g["duration"] for g in grid})
    cell = {(g["duration"], g["interval"]): g for g in grid}
    lines = ["| duration \\ interval | " + " | ".join(str(i) for i in intervals) + " |",
             "|---" * (len(intervals) + 1) + "|"]
    for d in durations:
        vals = [f"{cell[d, i]['train_loss']['mean']:.4f} (N={cell[d, i]['count']})" if (d, i) in cell else ""
                for i in intervals]
        lines.append(f"| {d} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def _factors(grid) -> dict:
    """How much the train loss moves with each factor: the mean spread (max − min) of the loss across one
    factor's values while another is held fixed. WSM's claim: duration matters most."""
    def spread(vary, fixed):
        groups = {}
        for g in grid:
            groups.setdefault(g[fixed], []).append(g["train_loss"]["mean"])
        spans = [max(v) - min(v) for v in groups.values() if len(v) > 1]
        return float(np.mean(spans)) if spans else float("nan")

    out = {"duration_at_fixed_interval": spread("duration", "interval"),
           "duration_at_fixed_count": spread("duration", "count"),
           "interval_and_count_at_fixed_duration": spread("interval", "duration")}
    out["text"] = ("Spread of the final train loss (mean over groups of max − min): across durations at a fixed "
                   f"interval {out['duration_at_fixed_interval']:.4f}; across durations at a fixed number of "
                   f"checkpoints {out['duration_at_fixed_count']:.4f}; across interval/count at a fixed duration "
                   f"{out['interval_and_count_at_fixed_duration']:.4f}.")
    return out


def _plot(rows, grid, intervals, path) -> str:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    labels = [r["scheme"] for r in rows]
    mean = [r["train_loss"]["mean"] for r in rows]
    a.barh(range(len(rows)), mean, xerr=[r["train_loss"]["std"] for r in rows], color="C0")
    a.set_yticks(range(len(rows)), labels, fontsize=8)
    a.set_xlim(0, max(m + r["train_loss"]["std"] for m, r in zip(mean, rows)) * 1.05)
    a.invert_yaxis()
    a.set_xlabel("final train loss")
    for i in intervals:
        pts = sorted((g["duration"], g["train_loss"]["mean"]) for g in grid if g["interval"] == i)
        if pts:
            b.plot(*zip(*pts), "o-", label=f"interval {i}")
    b.set_xscale("log")
    b.set_xlabel("merge duration (steps)")
    b.set_ylabel("final train loss")
    b.legend(fontsize=8)
    b.grid(alpha=0.3)
    return save(fig, path, tight_bbox=False)


def main(config, workdir):
    wsm_study(config, workdir)


if __name__ == "__main__":
    cli.main(main, __file__, check=check_study, resume_free=("wsm.",))
