"""``sweep(config, seeds, axes)``: seeds × hyperparameters as vmapped runs of one compiled program.

    res = sweep(config, seeds=8, axes={"optim.weight_decay": [0, 1e-3, 1e-2, 1e-1]})
    res.runs[i].coords, res.runs[i].result.records   # per run, as run(config, seed) would return them
    res.summary["grid"]                               # mean / std / min / max over seeds per grid point

Each group of runs (see :mod:`jaxlab.sweep.plan`) is one program: ``vmap`` of the trainer's pure pieces over
(seed key, traced hyperparameters), sharded over the devices, driven chunk by chunk by the same loop as
``run`` (:func:`jaxlab.train.drive`). A run that diverges is frozen and flagged by the trainer itself (a
``where`` on its own slice of the batch), so the other runs' numbers are the ones they would have had alone.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxlab import data as data_lib
from jaxlab import mesh as mesh_lib
from jaxlab.sweep import memory
from jaxlab.sweep.batched import BatchedCompiled, fetch, make_mesh
from jaxlab.sweep.plan import Group, RunSpec, chunk_sizes, describe, plan, seed_list
from jaxlab.grid import with_overrides
from jaxlab.io import MetricsWriter, Progress
from jaxlab.stats import grid_summary
from jaxlab.schema import validate
from jaxlab.train import Result, drive, make_record, make_train, resume_chunk, summarize


@dataclasses.dataclass
class RunResult:
    coords: dict      # {"seed": s, "optim.lr": ..., ...}
    result: Result    # records and summary as run(config, seed) returns them; state on host (numpy)


@dataclasses.dataclass
class SweepResult(Sequence):
    """The runs in grid order (point-major, then seed) — a sequence of RunResult — plus the aggregate."""

    runs: list[RunResult]
    # {"runs": per-run coords + summary, "grid": statistics over seeds per point, "sweep": plan and wall time}.
    # A run's summary["wall_time_s"] is its chunk's wall time divided by the chunk's runs (they ran together).
    summary: dict

    def __getitem__(self, i):
        return self.runs[i]

    def __len__(self):
        return len(self.runs)


def _log(msg: str):
    print(f"[sweep] {msg}", file=sys.stderr, flush=True)


def sweep(config, seeds: int | Sequence[int] | None = None, axes: str | dict | None = None, *, workdir=None,
          writer=None, dataset=None, devices: Sequence[jax.Device] | None = None, progress: bool | None = None,
          keep_states: bool = True, per_step_keys: Sequence[str] = (),
          log: Callable[[str], None] | None = _log) -> SweepResult:
    """Train every (seed, grid point) of ``seeds × axes``; defaults from ``config.sweep`` (seeds from config.seed).

    workdir / writer: per-run records to ``metrics.jsonl``, each tagged ``"run": coords``.
    devices: the devices of the sweep's mesh (default: all): ``config.mesh`` says how they are split between
      runs, data and fsdp (default: every device on runs).
    keep_states: keep each run's final TrainState (on host) in its Result.
    per_step_keys: per-step metrics (e.g. "grad_norm", "lr") kept for every optimiser step in ``Result.per_step``,
      not only at logged steps.
    log: one line per planning decision (None: silent).
    """
    validate(config)
    log = log or (lambda msg: None)
    groups, axes = plan(config, seeds, axes)
    seed_values = seed_list(config, seeds)
    mesh = make_mesh(devices, config.mesh)
    log(describe(groups, axes, seed_values))
    own_writer = writer is None and workdir is not None
    writer = MetricsWriter(workdir) if own_writer else writer
    datasets: dict[str, Any] = {}
    results: list[RunResult | None] = [None] * sum(len(g.runs) for g in groups)
    t0 = time.perf_counter()
    chunks_info = []
    try:
        for gi, group in enumerate(groups):
            data_key = group.config.data.to_json()
            if data_key not in datasets:
                datasets[data_key] = dataset if dataset is not None and not any(
                    k.startswith("data.") for k in group.structural) else data_lib.get_dataset(group.config.data)
            ckpt = (workdir, f"g{gi}") if workdir is not None and config.checkpoint.every else None
            info = _run_group(group, datasets[data_key], mesh, writer, progress, keep_states, results, log,
                              tuple(per_step_keys), f"group {gi + 1}/{len(groups)}" if len(groups) > 1 else "", ckpt)
            chunks_info.append(info)
    finally:
        if own_writer:
            writer.close()
    elapsed = time.perf_counter() - t0
    runs = [r for r in results if r is not None]
    summary = grid_summary(runs, axes)
    summary["sweep"] = {"num_runs": len(runs), "seeds": seed_values, "axes": {k: list(v) for k, v in axes.items()},
                        "devices": mesh.size, "mesh": dict(mesh.shape), "groups": chunks_info,
                        "wall_time_s": round(elapsed, 3)}
    return SweepResult(runs=runs, summary=summary)


def _run_group(group: Group, dataset, mesh, writer, progress, keep_states, results, log, per_step_keys,
               label: str, ckpt=None) -> dict:
    config = group.config
    trainer = make_train(config, dataset, batched=True, data_shards=mesh_lib.num_shards(mesh))
    fns = BatchedCompiled(trainer, mesh)
    data = fns.put_shared(trainer.device_data(dataset))
    per_device = memory.runs_per_device(trainer, data, mesh.devices.flat[0], log)
    run_devices = mesh.shape["runs"]  # devices the run axis is split over (each run spans data × fsdp)
    num_chunks, size = chunk_sizes(len(group.runs), None if per_device is None else per_device * run_devices,
                                   run_devices)
    pad = num_chunks * size - len(group.runs)
    where = f"{label}: " if label else ""
    structural = f" {group.structural}" if group.structural else ""
    log(f"{where}{len(group.runs)} runs{structural} in {num_chunks} program call(s) of {size} runs "
        f"({run_devices} run device(s) × {size // run_devices}"
        f"{f' × data {mesh_lib.num_shards(mesh)}' if mesh_lib.num_shards(mesh) > 1 else ''}"
        f"{f', {pad} padding runs masked' if pad else ''})")
    for c in range(num_chunks):
        chunk = group.runs[c * size:(c + 1) * size]
        _run_chunk(config, trainer, fns, data, chunk, size, writer, progress, keep_states, results, per_step_keys,
                   desc=f"{where}runs {chunk[0].index + 1}-{chunk[-1].index + 1}",
                   ckpt=None if ckpt is None else (ckpt[0], f"{ckpt[1]}c{c}"))
    return {"structural": group.structural, "runs": len(group.runs), "chunks": num_chunks, "runs_per_chunk": size,
            "padding": pad}


def _run_chunk(config, trainer, fns, data, chunk: list[RunSpec], size: int, writer, progress, keep_states,
               results, per_step_keys, desc: str, ckpt=None):
    """Train ``chunk`` (padded to ``size`` with copies of its first run, whose outputs are dropped).

    ckpt: (workdir, tag): checkpoint the chunk's stacked state in workdir/checkpoints/tag, resuming from it
    (per_step_keys then hold the steps trained in this process only)."""
    specs = chunk + [chunk[0]] * (size - len(chunk))
    keys = np.stack([np.asarray(jax.random.PRNGKey(s.seed)) for s in specs])
    hp = jax.tree.map(lambda *v: np.asarray(v, np.float32), *[s.numbers for s in specs])  # [runs] per field
    keys, hp = fns.put_runs(keys), fns.put_runs(hp)
    state = fns.init(keys, hp)

    n = len(chunk)
    records: list[list[dict]] = [[] for _ in range(n)]
    steps: dict[str, list[np.ndarray]] = {k: [] for k in per_step_keys}  # key -> chunks of [runs, chunk_steps]
    start, checkpointer = 0, None
    if ckpt is not None:
        start, state, records, checkpointer = resume_chunk(config, *ckpt, state, [s.coords for s in chunk])
    writers = [writer.with_extra({"run": s.coords}) if writer is not None else None for s in chunk]
    show = config.train.progress if progress is None else progress
    bar = Progress(total=config.train.steps, initial=start, enabled=show, desc=desc)

    def on_fetch(step, per_step, rec):
        for k in steps:
            if per_step is not None:
                steps[k].append(np.asarray(per_step[k])[:n])
        for i in range(n):
            r = make_record(step, _take(per_step, i), _take(rec, i))
            records[i].append(r)
            if writers[i] is not None:
                writers[i].write(r)
        if show:
            bar.update_to(step, _mean_record(records, step, bar.keys))

    t0 = time.perf_counter()
    try:
        state, timing = drive(config, fns, state, hp, data, on_fetch, fetch=fetch, start=start,
                              callbacks=[checkpointer] if checkpointer else ())
    except BaseException:
        if checkpointer is not None:
            checkpointer.close()
        raise
    if checkpointer is not None:
        checkpointer.finish()
    # Without keep_states only the flags come back to the host (summaries need them), not parameters.
    host_state = fetch(state if keep_states else state.replace(params=None, opt_state=None))
    bar.close()
    share = (time.perf_counter() - t0) / n  # the chunk's wall time, amortised over its runs
    per_step = {k: np.concatenate(v, axis=1) if v else np.zeros((n, 0)) for k, v in steps.items()}
    for i, spec in enumerate(chunk):
        run_state = _take(host_state, i)
        cfg = with_overrides(config, spec.point) if spec.point else config
        summary = summarize(records[i], run_state, share)
        results[spec.index] = RunResult(spec.coords, Result(config=cfg, seed=spec.seed,
                                                            state=run_state if keep_states else None,
                                                            records=records[i], summary=summary,
                                                            per_step={k: v[i] for k, v in per_step.items()} or None,
                                                            timing=timing))


def _take(tree, i: int):
    return None if tree is None else jax.tree.map(lambda x: x[i], tree)


def _mean_record(records: list[list[dict]], step: int, keys) -> dict:
    """Mean over the chunk's live (not diverged) runs of the latest record's ``keys``, for the progress bar."""
    last = [r[-1] for r in records if r and r[-1]["step"] == step and not r[-1].get("diverged")]
    out = {}
    for k in keys:
        vals = np.asarray([r[k] for r in last if isinstance(r.get(k), (int, float))], np.float64)
        finite = vals[np.isfinite(vals)]
        if finite.size:
            out[k] = float(finite.mean())
    return out


__all__ = ["sweep", "SweepResult", "RunResult"]
