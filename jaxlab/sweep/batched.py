"""The trainer's pure pieces vmapped over runs and placed on a ("runs", "data", "fsdp") mesh.

Every argument and result carries a leading run axis ``[R, ...]`` (state, keys, hp) except the data, which
all runs share. The run axis is split over the mesh's ``runs`` devices. With data × fsdp = 1 that is a
``shard_map``: each device runs the vmapped program on its ``R / runs`` runs and nothing crosses devices. With
data × fsdp > 1 (a 2-D or 3-D mesh) the vmapped program is left to GSPMD: the state is laid out with ``runs`` on
its leading axis (and fsdp on a parameter dimension), the shared examples split over data × fsdp, and GSPMD
inserts each run's reductions over its data devices. Either way the numbers are each run's own, to float32
reduction order.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxlab import mesh as mesh_lib
from jaxlab.train.loop import fetch, state_shardings

AXIS = "runs"


def make_mesh(devices: Sequence[jax.Device] | None = None, mesh_cfg=None) -> Mesh:
    """A sweep's mesh on ``devices`` (default all): ``mesh_cfg`` (a ``mesh`` config section) or every device
    on runs."""
    return mesh_lib.make_mesh(mesh_cfg, devices, sweep=True)


class BatchedCompiled:
    """``init / advance / measure`` of a Trainer over a run axis, jitted (state donated to ``advance``).

    The same call signatures as ``jaxlab.train.Compiled``, so ``jaxlab.train.drive`` runs either.
    """

    def __init__(self, trainer, mesh: Mesh):
        self.mesh = mesh
        self.gspmd = mesh_lib.num_shards(mesh) > 1
        runs, shared = P(AXIS), P()
        if self.gspmd:
            self._init_gspmd(trainer)
            return

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
            # A loop, not vmap: initialisation runs once, and the looped form compiles faster (vmapped threefry
            # is slow to compile) and draws each run's parameters exactly as run(config, seed) does.
            fn = lambda k, h: jax.lax.map(lambda a: trainer.init(*a), (k, h))  # noqa: E731
            return fn(keys, hp) if mesh.size == 1 else jax.shard_map(
                fn, mesh=mesh, in_specs=(runs, runs), out_specs=runs, check_vma=False)(keys, hp)

        self.init = jax.jit(init)
        self.advance = jax.jit(advance, static_argnames="num_steps", donate_argnums=0)
        self.measure = jax.jit(measure, static_argnames=("test", "curvature"))

    def _init_gspmd(self, trainer):
        """vmap under jit; the layout of every result is pinned (state: runs × fsdp, metrics: runs)."""
        mesh = self.mesh

        def pin_state(state):
            return jax.lax.with_sharding_constraint(state, state_shardings(mesh, state, run_axis=True))

        def pin_runs(tree):
            return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, P(AXIS)))

        def advance(state, hp, data, num_steps):
            state, per_step = jax.vmap(functools.partial(trainer.advance, num_steps=num_steps),
                                       in_axes=(0, 0, None))(state, hp, data)
            return pin_state(state), pin_runs(per_step)

        def measure(state, hp, data, test, curvature):
            fn = functools.partial(trainer.measure, test=test, curvature=curvature)
            rec, carry = jax.vmap(fn, in_axes=(0, 0, None))(state, hp, data)
            carry = None if carry is None else jax.lax.with_sharding_constraint(
                carry, mesh_lib.tree_shardings(mesh, carry, run_axis=True, fsdp=True))
            return pin_runs(rec), carry

        def init(keys, hp):
            return pin_state(jax.lax.map(lambda a: trainer.init(*a), (keys, hp)))

        self.init = jax.jit(init)
        self.advance = jax.jit(advance, static_argnames="num_steps", donate_argnums=0)
        self.measure = jax.jit(measure, static_argnames=("test", "curvature"))

    def put_runs(self, tree):
        """Host arrays with a leading run axis -> device arrays split over the mesh along it."""
        return jax.device_put(tree, NamedSharding(self.mesh, P(AXIS)))

    def put_shared(self, tree):
        """Arrays every run reads (the data) -> replicated on every device of the mesh, or, on a data × fsdp
        mesh, their examples split over data × fsdp (each process places only its own pieces)."""
        if self.gspmd:
            return mesh_lib.place_examples(self.mesh, tree)
        return jax.device_put(tree, NamedSharding(self.mesh, P()))


__all__ = ["BatchedCompiled", "make_mesh", "fetch", "AXIS"]
