"""Checkpointing during training and exact resume.

    result = run_with_checkpoints(config, seed, workdir)   # = train.run(...), resuming from workdir's checkpoints

A :class:`Checkpointer` is a ``train.run`` / ``train.drive`` callback. At a checkpoint step it keeps an
on-device copy of the state (``jnp.copy``: dispatched asynchronously, so the next chunk is not delayed, and
not aliased by the donation that follows) and writes it one chunk later, once that step's metrics record has
been flushed to metrics.jsonl. So a committed checkpoint at step s always has its records ≤ s on disk, and
resume can cut metrics.jsonl back to exactly those: nothing is lost and nothing is written twice.

Resume = restore the newest checkpoint that verifies (see ``manager.restore_latest``), drop this run's
metrics records after its step (a killed process may have logged further, or torn the last line), and
continue. Batches are a pure function of (key, step), so the continuation is bitwise the uninterrupted run
on CPU. The same code checkpoints a vmapped sweep chunk: its state is the same pytree with a run axis.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.checkpoint import manager as mgr
from jaxlab.config import flatten, register_check, require

CHECKPOINTS = "checkpoints"


def checkpoint_dir(workdir: str, tag: str = "run") -> str:
    return os.path.join(os.path.abspath(workdir), CHECKPOINTS, tag)


def checkpoint_sets(workdir: str) -> list[str]:
    """Tags of the checkpoint directories under ``workdir/checkpoints`` that hold at least one committed step."""
    root = os.path.join(workdir, CHECKPOINTS)
    if not os.path.isdir(root):
        return []
    return sorted(t for t in os.listdir(root) if any(d.isdigit() for d in os.listdir(os.path.join(root, t))))


def has_checkpoints(workdir: str) -> bool:
    return bool(checkpoint_sets(workdir))


class Checkpointer:
    """Saves at every ``every``-th step and at the last step, each write deferred by one chunk (see module doc)."""

    def __init__(self, mngr, every: int, total_steps: int, meta: dict | None = None):
        self.mngr, self.every, self.total, self.meta = mngr, every, total_steps, meta or {}
        self.held = None  # (step, device copy of the state)
        self.saved: list[int] = []

    def __call__(self, state, step: int, records=None) -> None:
        self.flush()
        if step % self.every == 0 or step == self.total:
            self.held = (step, jax.tree.map(jnp.copy, state))

    def flush(self) -> None:
        if self.held is not None:
            step, state = self.held
            self.held = None
            mgr.save(self.mngr, step, mgr.host_copy(state), {**self.meta, "total_steps": self.total})
            self.saved.append(step)

    def finish(self) -> None:
        """Write the held state and wait for the asynchronous writes (call when the run has returned)."""
        self.flush()
        self.close()

    def close(self) -> None:
        """Wait for writes in flight and release the manager, without writing the held state (after an error,
        its metrics record may not be on disk)."""
        self.held = None
        self.mngr.wait_until_finished()
        self.mngr.close()


# ------------------------------------------------------------------------------------------------ metrics

def _normalise(obj):
    from jaxlab.io import _clean
    return json.loads(json.dumps(_clean(obj)))


def cut_metrics(path: str, belongs: Callable[[dict], bool], last_step: int) -> list[dict]:
    """Drop this run's records after ``last_step`` (and a torn last line) from metrics.jsonl, in place; return
    this run's records up to ``last_step``. belongs(record): whether a record is this run's.

    The dropped lines are a suffix (this run was the last to write), so the file is truncated at the first of
    them: one syscall, and an appending writer that already holds the file keeps working.
    """
    if not os.path.exists(path):
        return []
    kept, cut, offset = [], None, 0
    with open(path, "rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if rec is None or (belongs(rec) and rec.get("step", -1) > last_step):
                if cut is None:
                    cut = offset
            elif cut is not None:
                warnings.warn(f"{path}: a record of another run follows this run's dropped records; "
                              "it is dropped with them", RuntimeWarning, stacklevel=2)
            elif belongs(rec):
                kept.append(rec)
            offset += len(line)
    if cut is not None:
        with open(path, "r+b") as f:
            f.truncate(cut)
    return kept


def _strip(records: list[dict], keys) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in keys} for r in records]


# ------------------------------------------------------------------------------------------------ resume

def to_device(host_state, template):
    """Restored numpy leaves -> device arrays placed like ``template``'s (sharded over a sweep's mesh)."""
    def put(x, t):
        sharding = getattr(t, "sharding", None)
        return jax.device_put(x, sharding) if sharding is not None else jnp.asarray(x)
    return jax.tree.map(put, host_state, template)


def resume(mngr, template, metrics_path: str, run_extras: list[dict], total_steps: int):
    """(start step, device state or None, [records per run]) for the runs tagged by ``run_extras`` (the extra
    fields their metrics lines carry, e.g. [{"run": coords}, ...]; [{}] for a plain run)."""
    step, host_state, meta = mgr.restore_latest(mngr, template)
    for bad in [s for s in mngr.all_steps() if step is None or s > step]:
        mgr.quarantine(mngr, bad)  # newer than the newest valid one: unreadable; the run rewrites that step
    if step is not None and meta.get("total_steps", total_steps) != total_steps:
        raise mgr.CheckpointError(f"{mngr.directory}: checkpoints are of a {meta['total_steps']}-step run, "
                                  f"this run has train.steps={total_steps}; use --overwrite to start over")
    extras = [_normalise(e) for e in run_extras]
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
    from jaxlab import data as data_lib
    from jaxlab.config import validate
    from jaxlab.io import MetricsWriter
    from jaxlab.train import make_train, run, summarize

    validate(config)
    dataset = dataset if dataset is not None else data_lib.get_dataset(config.data)
    every = config.checkpoint.every
    state, prior, ck = None, [], None
    if every:
        trainer = make_train(config, dataset)
        full_hp = {k: jnp.float32(v) for k, v in {**trainer.default_hp(), **(hp or {})}.items()}
        template = jax.eval_shape(trainer.init, jax.random.PRNGKey(seed), full_hp)
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


@register_check("checkpoint")
def check_checkpoint(config):
    c, log_every = config.checkpoint, config.train.log_every
    require(c.every >= 0, "checkpoint.every", c.every, "must be >= 0 (0 = off)")
    if c.every:
        require(c.every % log_every == 0, "checkpoint.every", c.every,
                f"must be a multiple of train.log_every={log_every}")
    require(c.keep_last >= 0, "checkpoint.keep_last", c.keep_last, "must be >= 0 (0 = keep all)")
    require(c.keep_every >= 0, "checkpoint.keep_every", c.keep_every, "must be >= 0 (0 = none)")
    if c.every and c.keep_every:
        require(c.keep_every % c.every == 0, "checkpoint.keep_every", c.keep_every,
                f"must be a multiple of checkpoint.every={c.every}")


def resume_chunk(config, workdir: str, tag: str, state, coords: list[dict]):
    """For a vmapped sweep chunk: (start, state, [records per run], Checkpointer). ``state`` is the chunk's
    freshly initialised stacked state: the template (and device placement) of what is restored."""
    mngr = mgr.open_manager(checkpoint_dir(workdir, tag), config.checkpoint)
    start, restored, records = resume(mngr, state, os.path.join(workdir, "metrics.jsonl"),
                                      [{"run": c} for c in coords], config.train.steps)
    ck = Checkpointer(mngr, config.checkpoint.every, config.train.steps, {"runs": _normalise(coords)})
    return start, restored if restored is not None else state, records, ck


# Keys that may differ between the run that wrote the checkpoints and the one resuming them.
RESUME_FREE = ("train.progress", "checkpoint.keep_last", "checkpoint.keep_every", "checkpoint.async_save")


def config_mismatch(config, workdir: str) -> str:
    """'' when ``config`` matches workdir/config.json up to RESUME_FREE, else the differing keys and values."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        old = flatten(json.load(f))
    new = flatten(_normalise(config.to_dict()))
    free = lambda k: k in RESUME_FREE or k.startswith("checkpoint.study.")  # noqa: E731 - post-hoc merges only
    keys = sorted(k for k in set(old) | set(new) if not free(k) and old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)
