"""The trainer's pure pieces vmapped over runs and sharded over devices.

Every argument and result carries a leading run axis ``[R, ...]`` (state, keys, hp) except the data, which
all runs share. With several devices the run axis is split across them by ``shard_map``: each device runs the
vmapped program on its ``R / num_devices`` runs and nothing crosses devices (runs are independent), so a
multi-GPU host or a TPU slice runs the sweep in parallel with no change to the training code.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "runs"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (AXIS,))


class BatchedCompiled:
    """``init / advance / measure`` of a Trainer over a run axis, jitted (state donated to ``advance``).

    The same call signatures as ``jaxlab.train.Compiled``, so ``jaxlab.train.drive`` runs either.
    """

    def __init__(self, trainer, mesh: Mesh):
        self.mesh = mesh
        runs, shared = P(AXIS), P()

        def batched(fn, in_axes):
            fn = jax.vmap(fn, in_axes=in_axes)
            if mesh.size == 1:
                return fn  # the plain vmapped program: identical to what a one-device sweep compiles
            specs = tuple(runs if a == 0 else shared for a in in_axes)
            return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=runs, check_vma=False)

        def advance(state, hp, data, num_steps):
            return batched(functools.partial(trainer.advance, num_steps=num_steps), (0, 0, None))(state, hp, data)

        def measure(state, hp, data, test, curvature):
            fn = functools.partial(trainer.measure, test=test, curvature=curvature)
            return batched(fn, (0, 0, None))(state, hp, data)

        def init(keys, hp):
            # A loop, not vmap: initialisation runs once, and the looped form compiles ~2x faster (vmapped
            # threefry is slow to compile) and draws each run's parameters exactly as run(config, seed) does.
            fn = lambda k, h: jax.lax.map(lambda a: trainer.init(*a), (k, h))  # noqa: E731
            return fn(keys, hp) if mesh.size == 1 else jax.shard_map(
                fn, mesh=mesh, in_specs=(runs, runs), out_specs=runs, check_vma=False)(keys, hp)

        self.init = jax.jit(init)
        self.advance = jax.jit(advance, static_argnames="num_steps", donate_argnums=0)
        self.measure = jax.jit(measure, static_argnames=("test", "curvature"))

    def put_runs(self, tree):
        """Host arrays with a leading run axis -> device arrays split over the mesh along it."""
        return jax.device_put(tree, NamedSharding(self.mesh, P(AXIS)))

    def put_shared(self, tree):
        """Arrays every run reads (the data) -> replicated on every device of the mesh."""
        return jax.device_put(tree, NamedSharding(self.mesh, P()))


def fetch(tree):
    """Device -> host numpy; in a multi-process run (a pod slice) the run axis is gathered from every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)
