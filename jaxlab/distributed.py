"""Multi-process runs: starting JAX's multi-controller runtime, and which process writes the outputs.

    initialize(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=0)   # or from the environment
    if is_writer(): write_summary(...)                                                 # process 0 only

Every process runs the same program on the same config; meshes span the devices of all of them (``jax.devices()``
is global), and GSPMD / shard_map put the collectives in. Nothing here schedules work: it only connects the
processes. Where the launch parameters come from, first found wins:

* arguments (the experiment CLI's ``--coordinator_address``, ``--num_processes``, ``--process_id`` flags);
* ``JAXLAB_COORDINATOR_ADDRESS``, ``JAXLAB_NUM_PROCESSES``, ``JAXLAB_PROCESS_ID``;
* JAX's own detection when nothing is given but a cluster is recognised: Cloud TPU (every worker of a slice,
  no settings), Slurm (``srun``, one task per host or per GPU), Open MPI.

A process that dies makes the others fail within ``heartbeat_timeout_s`` (the coordination service stops hearing
its heartbeats and ends every process with an error; a collective with the dead peer may fail sooner), never hang.
On CPU the cross-process collectives are gloo. This module imports only jax (an ingredient).
"""
from __future__ import annotations

import os

import jax

DEFAULT_HEARTBEAT_S = 100  # JAX's default; the tests use a few seconds


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else None


def _cluster_detected() -> bool:
    """A cluster JAX's own auto-detection knows (so initialize() needs no arguments)."""
    env = os.environ
    return bool(env.get("TPU_WORKER_HOSTNAMES") or env.get("CLOUD_TPU_TASK_ID") or env.get("MEGASCALE_COORDINATOR_ADDRESS")
                or (env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1")) > 1)
                or int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, heartbeat_timeout_s: int | None = None) -> bool:
    """Connect this process to the others (before any JAX computation). -> whether it runs multi-process.

    Nothing given and no cluster detected: a no-op (one process)."""
    address = coordinator_address or os.environ.get("JAXLAB_COORDINATOR_ADDRESS")
    num = num_processes if num_processes is not None else _env_int("JAXLAB_NUM_PROCESSES")
    pid = process_id if process_id is not None else _env_int("JAXLAB_PROCESS_ID")
    heartbeat = heartbeat_timeout_s or _env_int("JAXLAB_HEARTBEAT_TIMEOUT_S") or DEFAULT_HEARTBEAT_S
    explicit = address is not None or num is not None or pid is not None
    if not explicit and not _cluster_detected():
        return False
    if explicit and num == 1:
        return False
    if os.environ.get("JAX_PLATFORMS", "") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid,
                               heartbeat_timeout_seconds=int(heartbeat))
    return True


def is_writer() -> bool:
    """Whether this process writes the run's outputs (metrics, summaries, plots): process 0 only."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process gets here (a no-op with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
