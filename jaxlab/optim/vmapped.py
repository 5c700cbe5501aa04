"""Many runs of one config as one program: ``jax.vmap`` of the trainer over seeds and traced hyperparameters.

    results = run_points(config, [{"optim.lr": 0.1}, {"optim.lr": 0.3}], seeds=[0, 1, 2])
    results[1].records[2][-1]["test_accuracy"]      # point 1, seed 2, last logged step

Every (point, seed) pair is one lane of a single vmapped ``advance``: the grid costs one compilation, and the
device runs all lanes together. Only hyperparameters the trainer traces (``jaxlab.train.default_hp`` plus any
numeric optim field) may differ between points; structural settings (optimiser name, schedule name, weight-decay
variant) need one call per value. Records have the layout of ``jaxlab.train.run``'s.

(jaxlab.sweep generalises this across devices; these studies only need the single-device case.)
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import data as data_lib
from jaxlab.config import validate
from jaxlab.io import Progress
from jaxlab.train import TrainState, make_train, schedule_points

PER_STEP_KEYS = ("grad_norm", "batch_loss", "lr")


@dataclasses.dataclass
class PointResult:
    point: dict                       # {"optim.lr": ..., ...}: the traced values of this grid point
    seeds: list[int]
    records: list[list[dict]]         # [seed][logged step] -> record
    per_step: dict[str, np.ndarray]   # key -> [seeds, steps], every optimiser step (PER_STEP_KEYS)


def _flags(config, step: int) -> dict:
    steps, ev, cv = config.train.steps, config.train.eval_every, config.curvature.every
    return {"test": ev == 0 or step % ev == 0 or step == steps,
            "curvature": cv > 0 and (step % cv == 0 or step == steps)}


def run_points(config, points: Sequence[dict], seeds: Sequence[int], dataset=None, desc: str = "",
               progress: bool | None = None) -> list[PointResult]:
    """Train every (point, seed) of ``config`` in one vmapped program; points hold traced hp values by path."""
    validate(config)
    dataset = dataset if dataset is not None else data_lib.get_dataset(config.data)
    trainer = make_train(config, dataset)
    lanes = [(i, s) for i in range(len(points)) for s in seeds]
    default = trainer.default_hp()
    keys = sorted(set(default) | {k for p in points for k in p})
    hp = {k: jnp.asarray([points[i].get(k, default.get(k)) for i, _ in lanes], jnp.float32) for k in keys}
    rngs = jax.vmap(jax.random.PRNGKey)(jnp.asarray([s for _, s in lanes]))
    data = trainer.device_data(dataset)

    init = jax.jit(jax.vmap(trainer.init))
    advance, measure = {}, {}

    def advance_fn(n):
        if n not in advance:
            fn = jax.vmap(lambda s, h, d: trainer.advance(s, h, d, n), in_axes=(0, 0, None))
            advance[n] = jax.jit(fn, donate_argnums=0)
        return advance[n]

    def measure_fn(flags):
        key = tuple(sorted(flags.items()))
        if key not in measure:
            measure[key] = jax.jit(jax.vmap(lambda s, h, d: trainer.measure(s, h, d, **flags), in_axes=(0, 0, None)))
        return measure[key]

    show = config.train.progress if progress is None else progress
    bar = Progress(total=config.train.steps, enabled=show, desc=f"{desc} ({len(lanes)} runs)".strip())
    state: TrainState = init(rngs, hp)
    pending = [(0, None, measure_fn(_flags(config, 0))(state, hp, data))]
    fetched: list[tuple[int, dict | None, dict]] = []
    for start, length in schedule_points(config):
        state, per_step = advance_fn(length)(state, hp, data)
        end = start + length
        pending.append((end, per_step, measure_fn(_flags(config, end))(state, hp, data)))
        while len(pending) > 1:  # fetch the previous chunk while this one runs
            fetched.append(jax.device_get(pending.pop(0)))
            bar.update_to(fetched[-1][0], _lane_mean(fetched[-1][2]))
    fetched.extend(jax.device_get(pending))
    bar.close()

    per_lane_records: list[list[dict]] = [[] for _ in lanes]
    for step, per_step, rec in fetched:
        for j in range(len(lanes)):
            r = {"step": step, **{k: _scalar(v[j]) for k, v in rec.items()}}
            if per_step is not None:
                r.update({k: _scalar(v[j, -1]) for k, v in per_step.items() if k != "lr"})
            per_lane_records[j].append(r)
    chunks = [{k: c[k] for k in PER_STEP_KEYS if k in c} for _, c, _ in fetched if c is not None]
    steps = {k: np.concatenate([c[k] for c in chunks], axis=1) for k in (chunks[0] if chunks else {})}

    out = []
    for i, point in enumerate(points):
        idx = [j for j, (pi, _) in enumerate(lanes) if pi == i]
        out.append(PointResult(point=dict(point), seeds=list(seeds), records=[per_lane_records[j] for j in idx],
                               per_step={k: v[idx] for k, v in steps.items()}))
    return out


def _lane_mean(rec: dict) -> dict:
    return {k: float(np.mean(rec[k])) for k in ("train_loss", "test_accuracy") if k in rec}


def _scalar(x):
    x = np.asarray(x)
    if x.dtype == np.bool_:
        return bool(x)
    if np.issubdtype(x.dtype, np.integer):
        return int(x)
    return float(f"{float(x):.7g}")   # float32 holds 7 significant digits


# ---------------------------------------------------------------------------------------------------- aggregation

def final_stats(result: PointResult, keys: Sequence[str]) -> dict:
    """{key_mean, key_std} over the seeds that did not diverge (last record), and ``diverged`` (a count)."""
    finals = [r[-1] for r in result.records]
    ok = [f for f in finals if not f.get("diverged", False)]
    out = {"diverged": len(finals) - len(ok)}
    for k in keys:
        vals = np.array([f[k] for f in ok if isinstance(f.get(k), (int, float))], np.float64)
        out[f"{k}_mean"] = float(vals.mean()) if vals.size else float("nan")
        out[f"{k}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
    return out


def curvature_keys(records: Sequence[dict]) -> list[str]:
    """Keys only curvature measurements produce (present when config.curvature.every > 0), e.g. 'sharpness'."""
    base = {"step", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "param_norm", "lr", "diverged",
            "grad_norm", "batch_loss", "batch_accuracy", "cautious_fraction", "lion_linf", "lion_linf_bound"}
    last = records[-1]
    return [k for k in last if k not in base and "/" not in k and isinstance(last[k], (int, float))]


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], digits: int = 4) -> str:
    """rows of stats -> a markdown table. columns: (header, key); a key 'x' with x_mean/x_std shows 'm ± s'."""
    def cell(row, key):
        if f"{key}_mean" in row:
            m, s = row[f"{key}_mean"], row[f"{key}_std"]
            return f"{m:.{digits}g} ± {s:.2g}" if np.isfinite(m) else "—"
        v = row.get(key, "")
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r, k) for _, k in columns) + " |" for r in rows]
    return "\n".join(lines)
