"""Training as a pure function of ``(config, seed)``: the loop that drives a :class:`~jaxlab.train.trainer.Trainer`.

    result = run(config, seed)        # validate, load data, init, train to train.steps -> Result(records, summary)

:func:`drive` is the chunk loop shared by ``run`` and the sweep: jitted chunks of ``train.log_every`` steps with
donated state, the next chunk dispatched before the last chunk's metrics are fetched, and nothing per step on the
Python side. A run whose loss becomes non-finite or exceeds ``train.divergence_factor`` × its initial loss stops
updating (its state is frozen) and is flagged ``diverged`` with the step; in a vmapped sweep the other runs go on.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxlab import data as data_lib
from jaxlab import mesh as mesh_lib
from jaxlab import optim
from jaxlab.io import Progress
from jaxlab.schema import validate
from jaxlab.train.trainer import TrainState, Trainer, make_train


@dataclasses.dataclass
class Result:
    config: Any
    seed: int
    state: TrainState
    records: list[dict]
    summary: dict
    per_step: dict | None = None  # key -> [steps] host array of every optimiser step (sweep(per_step_keys=...))
    timing: list[dict] | None = None  # per fetched record, the host seconds of its chunk (drive), for cost estimates


def to_python(tree):
    """Device scalars -> Python numbers (one device_get for the whole record)."""
    def conv(x):
        x = np.asarray(x)
        if x.dtype == np.float32:  # 7 significant digits: all a float32 holds, without repr noise
            return float(f"{x.item():.7g}") if x.ndim == 0 else [float(f"{v:.7g}") for v in x.ravel().tolist()]
        return x.item() if x.ndim == 0 else x.tolist()
    return jax.tree.map(conv, jax.device_get(tree))


def schedule_points(config) -> list[tuple[int, int]]:
    """(chunk_start, chunk_length) pairs covering train.steps in chunks of train.log_every."""
    steps, every = config.train.steps, config.train.log_every
    return [(s, min(every, steps - s)) for s in range(0, steps, every)]


def measure_flags(config, step: int) -> dict:
    steps = config.train.steps
    ev, cv = config.train.eval_every, config.curvature.every
    at_start = step > 0 or config.curvature.at_start   # a final-state measurement skips the costly step 0
    return {"test": ev == 0 or step % ev == 0 or step == steps,
            "curvature": cv > 0 and at_start and (step % cv == 0 or step == steps)}


class Compiled:
    """The jitted entry points of a trainer: state donated to ``advance``; flags and lengths are static.

    mesh: a ``jaxlab.mesh`` mesh of more than one device makes this a data-parallel (and, with fsdp > 1,
    parameter-sharded) run: the state is laid out by ``state_shardings`` (replicated, or split over fsdp), the data
    by :meth:`put_data` (examples over data × fsdp), and GSPMD inserts the reductions. Same numbers as one device
    up to float32 reduction order."""

    def __init__(self, trainer: Trainer, mesh=None):
        self.mesh = mesh if mesh is not None and mesh.size > 1 else None
        if self.mesh is None:
            self.init = jax.jit(trainer.init)
            self.advance = jax.jit(trainer.advance, static_argnames="num_steps", donate_argnums=0)
            self.measure = jax.jit(trainer.measure, static_argnames=("test", "curvature"))
            return
        abstract = jax.eval_shape(trainer.init, jax.random.PRNGKey(0), optim.traced_numbers(trainer.config.optim))
        self.state_shardings = state_shardings(self.mesh, abstract, run_axis=False)
        rep = mesh_lib.replicated(self.mesh)
        self.init = jax.jit(trainer.init, out_shardings=self.state_shardings)
        self.advance = jax.jit(trainer.advance, static_argnames="num_steps", donate_argnums=0,
                               out_shardings=(self.state_shardings, rep))
        self.measure = jax.jit(trainer.measure, static_argnames=("test", "curvature"))

    def put_state(self, state: TrainState) -> TrainState:
        """A state from elsewhere (a restored checkpoint) -> laid out as ``init`` lays it out."""
        return state if self.mesh is None else jax.device_put(state, self.state_shardings)

    def put_data(self, data: dict) -> dict:
        """``trainer.device_data`` arrays -> placed on the mesh (examples split over data × fsdp)."""
        return data if self.mesh is None else mesh_lib.place_examples(self.mesh, data)


def state_shardings(mesh, abstract_state: TrainState, run_axis: bool) -> TrainState:
    """Where each TrainState leaf lives: parameters, optimiser state and the curvature carry split over fsdp (a
    no-op at fsdp = 1), the rest replicated; ``runs`` on the leading axis of every leaf of a sweep's state."""
    shard = lambda tree, fsdp: mesh_lib.tree_shardings(mesh, tree, run_axis, fsdp)  # noqa: E731
    return abstract_state.replace(
        **{f.name: shard(getattr(abstract_state, f.name), f.name in ("params", "opt_state", "curv"))
           for f in dataclasses.fields(abstract_state)})


def run(config, seed: int, *, hp: optim.Numbers | dict | None = None, writer=None, callbacks: Sequence[Callable] = (),
        initial_state: TrainState | None = None, dataset=None, progress: bool | None = None,
        devices=None) -> Result:
    """Train one run to ``config.train.steps``; deterministic in (config, seed, hp).

    hp: optimiser numbers to trace in place of the config's (Numbers, or {field name: value}, e.g. {"lr": 0.1});
      lr and weight_decay are traced in any case (``optim.traced_numbers``).
    writer: optional ``jaxlab.io.MetricsWriter``; each record is written as soon as it is fetched.
    callbacks: ``cb(state, step, records)`` after every chunk, before the state is donated to the next one
      (checkpointing); ``records`` are those fetched so far.
    initial_state: resume from this state (its ``step`` says where); records start after it.
    devices: the devices of the run's mesh (``config.mesh``; default every device: data parallel).
    """
    validate(config)
    dataset = dataset if dataset is not None else data_lib.get_dataset(config.data)
    mesh = mesh_lib.make_mesh(config.mesh, devices)
    trainer = make_train(config, dataset, data_shards=mesh_lib.num_shards(mesh))
    hp = optim.traced_numbers(config.optim, hp)
    fns = Compiled(trainer, mesh)
    key = jax.random.PRNGKey(seed)
    if fns.mesh is not None:  # host values: every process passes the same ones to the global program
        key = np.asarray(key)
    data = fns.put_data(trainer.device_data(dataset))
    state = fns.put_state(initial_state) if initial_state is not None else fns.init(key, hp)
    start = int(state.step)

    show = config.train.progress if progress is None else progress
    bar = Progress(total=config.train.steps, initial=start, enabled=show, desc=f"seed {seed}")
    records: list[dict] = []

    def on_fetch(step, per_step, rec):
        rec = make_record(step, per_step, rec)
        records.append(rec)
        if writer is not None:
            writer.write(rec)
        bar.update_to(step, rec)

    t0 = time.perf_counter()
    state, timing = drive(config, fns, state, hp, data, on_fetch, start=start, fetch=fetch,
                          callbacks=[lambda s, step, cb=cb: cb(s, step, records) for cb in callbacks])
    bar.close()
    elapsed = time.perf_counter() - t0
    summary = summarize(records, state, elapsed)
    return Result(config=config, seed=seed, state=state, records=records, summary=summary, timing=timing)


def fetch(tree):
    """Device -> host numpy. Across processes, arrays split over them are all-gathered first (every process
    gets the whole tree; replicated arrays are read from the local copy)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def drive(config, fns, state, hp, data, on_fetch: Callable, *, start: int = 0, callbacks: Sequence[Callable] = (),
          fetch: Callable = jax.device_get):
    """The chunk loop shared by :func:`run` (one run) and ``jaxlab.sweep`` (vmapped runs) -> (final state, timing).

    fns: ``advance(state, hp, data, num_steps=)`` and ``measure(state, hp, data, test=, curvature=)``, jitted
    (``Compiled``, or their vmapped and sharded forms). The next chunk is dispatched before the previous chunk's
    metrics are fetched, so the host never stalls the device. on_fetch(step, per_step, record) receives host
    (numpy) trees: per_step is the chunk's per-step metrics (None for the initial measurement at step 0).
    callbacks: ``cb(state, step)`` after each chunk, before the state is donated to the next one.
    fetch: device -> host transfer (a multi-process sweep passes an all-gather).
    timing: per fetched record {"step", "steps" (optimiser steps in its chunk; 0 for the initial measurement),
      "advance_s" (host seconds from the previous record's arrival to this chunk's per-step metrics), "measure_s"
      (from those to this record), "test", "curvature" (what the measurement computed)}. The host dispatches ahead,
      so these are the device times of the chunk and of its measurement; the first of each kind include compiling.
    """
    pending: list[tuple[int, int, Any, Any]] = []
    timing: list[dict] = []
    clock = [time.perf_counter()]

    def measure(state, step):
        """-> (record, state): the tracker's carry goes into the state (so checkpoints hold it too)."""
        rec, carry = fns.measure(state, hp, data, **measure_flags(config, step))
        return rec, state if carry is None else state.replace(curv=carry)

    def emit():
        step, length, per_step, rec = pending.pop(0)
        per_step = None if per_step is None else fetch(per_step)
        advanced = time.perf_counter()
        rec = fetch(rec)
        measured = time.perf_counter()
        timing.append({"step": step, "steps": length, "advance_s": advanced - clock[0],
                       "measure_s": measured - advanced, **measure_flags(config, step)})
        clock[0] = measured
        on_fetch(step, per_step, rec)

    if start == 0:
        rec, state = measure(state, 0)
        pending.append((0, 0, None, rec))
    for chunk_start, length in schedule_points(config):
        if chunk_start < start:
            continue
        state, per_step = fns.advance(state, hp, data, num_steps=length)
        end = chunk_start + length
        rec, state = measure(state, end)
        pending.append((end, length, per_step, rec))
        while len(pending) > 1:  # fetch the previous chunk while this one runs
            emit()
        for cb in callbacks:
            cb(state, end)
    while pending:
        emit()
    return state, timing


def make_record(step: int, per_step, rec) -> dict:
    """One run's host metrics at ``step`` -> a JSON-ready record: the measurement plus, after a chunk, the last
    step's batch metrics (what the optimiser saw)."""
    rec, per_step = to_python((rec, per_step))
    if per_step is not None:
        rec.update({k: v[-1] for k, v in per_step.items() if k != "lr"})
    return {"step": step, **rec}


def summarize(records: list[dict], state: TrainState, elapsed: float) -> dict:
    last = records[-1] if records else {}
    final = {f"final_{k}": v for k, v in last.items() if k not in ("step", "diverged") and isinstance(v, (int, float))}
    return {"steps": last.get("step", 0), **final, "diverged": bool(state.diverged),
            "diverged_step": int(state.diverged_step), "wall_time_s": round(elapsed, 3)}
