"""Writing a run's checkpoints while it trains, and where they live (``workdir/checkpoints/<tag>``).

A :class:`Checkpointer` is a ``train.run`` / ``train.drive`` callback. At a checkpoint step it keeps an
on-device copy of the state (``jnp.copy``: dispatched asynchronously, so the next chunk is not delayed, and
not aliased by the donation that follows) and writes it one chunk later, once that step's metrics record has
been flushed to metrics.jsonl. So a committed checkpoint at step s always has its records ≤ s on disk, and
resume (``jaxlab.train.resume``) can cut metrics.jsonl back to exactly those.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.checkpoint import manager as mgr
from jaxlab.faults import storage_errors

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
        """Write the held state. A storage failure (this save's, or an earlier asynchronous one's) is an OSError
        naming the checkpoint directory (:mod:`jaxlab.faults`)."""
        if self.held is not None:
            step, state = self.held
            self.held = None
            meta = {**self.meta, "total_steps": self.total}
            with storage_errors(str(self.mngr.directory)):
                if jax.process_count() > 1:  # every process writes its own shards; all of them see the checksums
                    from jax.experimental import multihost_utils

                    host = jax.tree.map(np.asarray, multihost_utils.process_allgather(state, tiled=True))
                    mgr.save(self.mngr, step, host, meta, device_state=state)
                else:
                    mgr.save(self.mngr, step, mgr.host_copy(state), meta)
            self.saved.append(step)

    def finish(self) -> None:
        """Write the held state and wait for the asynchronous writes (call when the run has returned)."""
        self.flush()
        self.close()

    def close(self) -> None:
        """Wait for writes in flight and release the manager, without writing the held state (after an error,
        its metrics record may not be on disk)."""
        self.held = None
        with storage_errors(str(self.mngr.directory)):
            self.mngr.wait_until_finished()
            self.mngr.close()
