"""How many runs fit in one vmapped program: ``sweep.chunk_size`` or an estimate against ``sweep.memory_budget_mb``.

The estimate compiles the one-run programs (a chunk of ``train.log_every`` steps, and the heaviest measurement:
test set and curvature) ahead of time and reads XLA's buffer assignment (``compiled.memory_analysis()``):
the device bytes a run needs beyond the shared data. Vmapping R runs scales that part by R (activations,
states and per-step metrics are all per run), which is what the budget divides.
"""
from __future__ import annotations

import functools

import jax
import numpy as np

from jaxlab import optim
from jaxlab.train.loop import measure_flags

MIB = 2 ** 20
AUTO_FRACTION = 0.8  # of a device's memory, when the budget is left at 0 and the backend reports a limit


def budget_bytes(config, device) -> int | None:
    """Per-device budget: ``sweep.memory_budget_mb``, else 80% of the device's memory if known, else None."""
    if config.sweep.memory_budget_mb > 0:
        return int(config.sweep.memory_budget_mb * MIB)
    try:
        stats = device.memory_stats() or {}
    except Exception:  # backends without memory stats (CPU) raise or return None
        stats = {}
    limit = stats.get("bytes_limit")
    return int(AUTO_FRACTION * limit) if limit else None


def _nbytes(tree) -> int:
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def bytes_per_run(trainer, data) -> tuple[int, int] | None:
    """(bytes one run needs, bytes shared by all runs) from the compiled one-run programs; None if unknown."""

    config = trainer.config
    key = jax.ShapeDtypeStruct((1, 2), np.uint32)
    hp = jax.tree.map(lambda _: jax.ShapeDtypeStruct((1,), np.float32), optim.traced_numbers(config.optim))
    state = jax.eval_shape(jax.vmap(trainer.init), key, hp)
    shared = _nbytes(data)
    flags = measure_flags(config, config.train.steps)
    flags["test"] = True
    fns = [
        jax.vmap(functools.partial(trainer.advance, num_steps=min(config.train.log_every, config.train.steps)),
                 in_axes=(0, 0, None)),
        jax.vmap(functools.partial(trainer.measure, **flags), in_axes=(0, 0, None)),
    ]
    worst = 0
    for fn in fns:
        stats = jax.jit(fn).lower(state, hp, data).compile().memory_analysis()
        if stats is None:
            return None
        total = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
        worst = max(worst, total - stats.alias_size_in_bytes - shared)
    return max(worst, 1), shared


def runs_per_device(trainer, data, device, log=None) -> int | None:
    """Most runs one device should hold in one program (None = no limit)."""
    config = trainer.config
    if config.sweep.chunk_size > 0:
        return config.sweep.chunk_size
    budget = budget_bytes(config, device)
    if budget is None:
        return None
    est = bytes_per_run(trainer, data)
    if est is None:
        if log:
            log("memory: the backend reports no buffer sizes; runs are not split by memory")
        return None
    per_run, shared = est
    n = max(1, (budget - shared) // per_run)
    if log:
        log(f"memory: ~{per_run / MIB:.1f} MiB per run + {shared / MIB:.1f} MiB shared data; budget "
            f"{budget / MIB:.0f} MiB per device -> at most {n} runs per device per program")
    return int(n)
