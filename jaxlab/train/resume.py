"""Resuming a run or a sweep chunk from its checkpoints: the drivers' side of checkpointing.

    result = run_with_checkpoints(config, seed, workdir)   # = train.run(...), resuming from workdir's checkpoints

Resume = restore the newest checkpoint that verifies (``jaxlab.checkpoint.manager.restore_latest``), drop this
run's metrics records after its step (a killed process may have logged further, or torn the last line), and
continue. Batches are a pure function of (key, step), so the continuation is bitwise the uninterrupted run
on CPU. The same code resumes a vmapped sweep chunk: its state is the same pytree with a run axis.
"""
from __future__ import annotations

import os
import time
import warnings

import jax
import jax.numpy as jnp

from jaxlab import data as data_lib
from jaxlab import optim
from jaxlab.checkpoint import manager as mgr
from jaxlab.checkpoint.saver import Checkpointer, checkpoint_dir
from jaxlab.io import MetricsWriter, cut_metrics, normalise
from jaxlab.schema import validate
from jaxlab.train.loop import run, summarize
from jaxlab.train.trainer import make_train


def _strip(records: list[dict], keys) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in keys} for r in records]


def to_device(host_state, template):
    """Restored numpy leaves -> device arrays placed like ``template``'s (sharded over a sweep's mesh)."""
    def put(x, t):
        sharding = getattr(t, "sharding", None)
        if sharding is not None:
            return jax.device_put(x, sharding)
        # no placement given: numpy across processes (the run lays it out on its mesh), else device 0
        return x if jax.process_count() > 1 else jnp.asarray(x)
    return jax.tree.map(put, host_state, template)


def resume(mngr, template, metrics_path: str, run_extras: list[dict], total_steps: int):
    """(start step, device state or None, [records per run]) for the runs tagged by ``run_extras`` (the extra
    fields their metrics lines carry, e.g. [{"run": coords}, ...]; [{}] for a plain run)."""
    why: dict[int, Exception] = {}
    step, host_state, meta = mgr.restore_latest(mngr, template, on_skip=why.__setitem__)
    for bad in [s for s in mngr.all_steps() if step is None or s > step]:
        moved = mgr.quarantine(mngr, bad)  # newer than the newest valid one: unreadable; the run rewrites that step
        reason = why.get(bad, f"checkpoint step {bad} in {mngr.directory} cannot be read")
        warnings.warn(f"skipping checkpoint: {reason}; moved it to {os.path.basename(moved)}, resuming from "
                      f"{'the start' if step is None else f'step {step}'}", RuntimeWarning, stacklevel=2)
    if step is not None and meta.get("total_steps", total_steps) != total_steps:
        raise mgr.CheckpointError(f"{mngr.directory}: checkpoints are of a {meta['total_steps']}-step run, "
                                  f"this run has train.steps={total_steps}; use --overwrite to start over")
    extras = [normalise(e) for e in run_extras]
    keys = set().union(*(e.keys() for e in extras))

    def which(rec):
        for i, e in enumerate(extras):
            if all(rec.get(k) == v for k, v in e.items()):
                return i
        return None

    kept = cut_metrics(metrics_path, lambda r: which(r) is not None, -1 if step is None else step)
    per_run: list[list[dict]] = [[] for _ in extras]
    for rec in kept:
        per_run[which(rec)].append(rec)
    per_run = [_strip(r, keys) for r in per_run]
    if step is None:
        return 0, None, per_run
    for i, recs in enumerate(per_run):
        if not recs or recs[-1]["step"] != step:
            warnings.warn(f"{metrics_path}: run {run_extras[i]} has no record at the checkpoint step {step}; "
                          "its metrics before the checkpoint are incomplete", RuntimeWarning, stacklevel=2)
    return step, to_device(host_state, template), per_run


def run_with_checkpoints(config, seed: int, workdir: str, *, hp=None, dataset=None, progress=None, callbacks=()):
    """``jaxlab.train.run`` writing ``workdir/metrics.jsonl`` and, when ``checkpoint.every`` > 0, checkpoints in
    ``workdir/checkpoints/run``; continues from the newest valid checkpoint there. -> train.Result (all records).
    callbacks: more ``cb(state, step, records)``, called after the checkpointer."""
    validate(config)
    dataset = dataset if dataset is not None else data_lib.get_dataset(config.data)
    every = config.checkpoint.every
    state, prior, ck = None, [], None
    if every:
        trainer = make_train(config, dataset)
        template = jax.eval_shape(trainer.init, jax.random.PRNGKey(seed), optim.traced_numbers(config.optim, hp))
        mngr = mgr.open_manager(checkpoint_dir(workdir), config.checkpoint)
        _, state, (prior,) = resume(mngr, template, os.path.join(workdir, "metrics.jsonl"), [{}], config.train.steps)
        ck = Checkpointer(mngr, every, config.train.steps, {"seed": seed})
    writer = MetricsWriter(workdir)
    t0 = time.perf_counter()
    try:
        res = run(config, seed, hp=hp, writer=writer, callbacks=([ck] if ck else []) + list(callbacks), initial_state=state,
                  dataset=dataset, progress=progress)
    except BaseException:
        if ck is not None:
            ck.close()
        raise
    finally:
        writer.close()
    if ck is not None:
        ck.finish()
    res.records = prior + res.records
    res.summary = summarize(res.records, res.state, time.perf_counter() - t0)
    return res


def resume_chunk(config, workdir: str, tag: str, state, coords: list[dict]):
    """For a vmapped sweep chunk: (start, state, [records per run], Checkpointer). ``state`` is the chunk's
    freshly initialised stacked state: the template (and device placement) of what is restored."""
    mngr = mgr.open_manager(checkpoint_dir(workdir, tag), config.checkpoint)
    start, restored, records = resume(mngr, state, os.path.join(workdir, "metrics.jsonl"),
                                      [{"run": c} for c in coords], config.train.steps)
    ck = Checkpointer(mngr, config.checkpoint.every, config.train.steps, {"runs": normalise(coords)})
    return start, restored if restored is not None else state, records, ck
