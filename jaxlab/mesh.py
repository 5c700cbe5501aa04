"""The device mesh of a run or a sweep: the ``mesh`` config section and the shardings placed on it.

    mesh = make_mesh(config.mesh, sweep=False)        # Mesh over every device, axes ("runs", "data", "fsdp")
    data = place_examples(mesh, arrays)               # [N, ...] arrays split over data × fsdp along N
    env = host_devices_env(8, root)                   # a subprocess's environment: 8 CPU devices, root importable
    shardings = state_shardings(mesh, abstract_state, run_axis=False)

Axes (always all three; an unused one has size 1, so one code path serves every shape):
  runs  independent runs of a sweep (a vmapped run axis); nothing crosses it.
  data  the examples of each run (training batch, evaluation and curvature sets). Gradient, loss and HVP
        reductions over examples are the all-reduces GSPMD inserts.
  fsdp  parameters, optimiser state and the curvature carry split along one dimension per leaf (the largest
        divisible one); the examples are split over it too (data × fsdp shards in all), so it is ZeRO-3 style
        data parallelism: GSPMD all-gathers a weight where it is used and reduce-scatters its gradient.

Defaults (0 = fill in from the device count): a single run puts every device on ``data``; a sweep puts every
device on ``runs``. The numbers do not depend on the mesh beyond float32 reduction order.
This module imports only jax and the config floor (an ingredient: drivers build on it).
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxlab.config import ConfigError, require

AXES = ("runs", "data", "fsdp")
EXAMPLES = ("data", "fsdp")  # the mesh axes an example axis is split over


def default_config() -> ml_collections.ConfigDict:
    """The ``mesh`` section."""
    return ml_collections.ConfigDict(dict(
        runs=0,   # sweep: devices along the run axis; 0 = every device not taken by data × fsdp. A single run: 1
        data=0,   # devices splitting each run's examples; 0 = single run: every device not in fsdp; sweep: 1
        fsdp=1,   # devices splitting parameters and optimiser state (and, with data, the examples)
    ))


def check(config):
    m = config.mesh
    require(m.runs >= 0, "mesh.runs", m.runs, "must be >= 0 (0 = from the device count)")
    require(m.data >= 0, "mesh.data", m.data, "must be >= 0 (0 = from the device count)")
    require(m.fsdp >= 1, "mesh.fsdp", m.fsdp, "must be >= 1")


def mesh_shape(mesh_cfg, num_devices: int, sweep: bool) -> dict[str, int]:
    """{"runs", "data", "fsdp"} sizes for ``num_devices`` devices; ConfigError if they do not fit."""
    fsdp = mesh_cfg.fsdp
    if sweep:
        data = mesh_cfg.data or 1
        runs = mesh_cfg.runs or max(num_devices // (data * fsdp), 1)
    else:
        if mesh_cfg.runs not in (0, 1):
            raise ConfigError(f"config.mesh.runs={mesh_cfg.runs}: a single run has one run (0 or 1)")
        runs = 1
        data = mesh_cfg.data or max(num_devices // fsdp, 1)
    shape = {"runs": runs, "data": data, "fsdp": fsdp}
    used = runs * data * fsdp
    if used > num_devices or (jax.process_count() > 1 and used != num_devices):
        raise ConfigError(f"config.mesh: runs={runs} × data={data} × fsdp={fsdp} = {used} devices, "
                          f"{num_devices} available" + (" (a multi-process mesh uses every device)"
                                                        if jax.process_count() > 1 else ""))
    return shape


def make_mesh(mesh_cfg=None, devices: Sequence[jax.Device] | None = None, sweep: bool = False) -> Mesh:
    """The ("runs", "data", "fsdp") mesh on ``devices`` (default: every device of every process).

    mesh_cfg None: the defaults (every device on runs for a sweep, on data for a single run)."""
    devices = list(jax.devices() if devices is None else devices)
    shape = mesh_shape(mesh_cfg if mesh_cfg is not None else default_config(), len(devices), sweep)
    n = math.prod(shape.values())
    return Mesh(np.array(devices[:n]).reshape(tuple(shape[a] for a in AXES)), AXES)


def num_shards(mesh: Mesh | None) -> int:
    """How many pieces an example axis is split into (data × fsdp); 1 without a mesh."""
    return 1 if mesh is None else mesh.shape["data"] * mesh.shape["fsdp"]


def example_sharding(mesh: Mesh, shape: tuple) -> NamedSharding:
    """Split the leading (example) axis over data × fsdp; replicated when it does not divide evenly."""
    if shape and shape[0] % num_shards(mesh) == 0:
        return NamedSharding(mesh, P(EXAMPLES))
    return NamedSharding(mesh, P())


def place_examples(mesh: Mesh, arrays: dict) -> dict:
    """Host arrays [N, ...] -> global arrays split over data × fsdp. Each process places only the pieces its
    own devices hold (``make_array_from_callback``), reading them from its host copy."""
    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, example_sharding(mesh, x.shape), lambda idx: x[idx])
    return jax.tree.map(put, arrays)


def leaf_spec(shape: tuple, run_axis: bool, fsdp: int) -> P:
    """A leaf's PartitionSpec: ``runs`` on a leading run axis, ``fsdp`` on its largest dimension that divides
    evenly (none: replicated over fsdp)."""
    spec: list = [None] * len(shape)
    lead = 1 if run_axis else 0
    if run_axis and shape:
        spec[0] = "runs"
    if fsdp > 1:
        dims = [d for d in range(lead, len(shape)) if shape[d] % fsdp == 0 and shape[d] >= fsdp]
        if dims:
            spec[max(dims, key=lambda d: shape[d])] = "fsdp"
    return P(*spec)


def tree_shardings(mesh: Mesh, tree, run_axis: bool, fsdp: bool):
    """NamedShardings for every leaf of ``tree`` (arrays or ShapeDtypeStructs)."""
    f = mesh.shape["fsdp"] if fsdp else 1
    return jax.tree.map(lambda x: NamedSharding(mesh, leaf_spec(tuple(x.shape), run_axis, f)), tree)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def host_devices_env(devices: int, *paths: str) -> dict[str, str]:
    """This process's environment for a subprocess that sees ``devices`` CPU devices (XLA reads the flag once, when
    its backend starts, so a process cannot change its own count): XLA_FLAGS as given plus the forced device count,
    JAX_PLATFORMS=cpu, and ``paths`` put before PYTHONPATH."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    return {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}
