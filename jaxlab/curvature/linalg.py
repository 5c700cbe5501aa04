"""Dense decompositions for the curvature code, one matrix per LAPACK call under ``vmap``.

Why: jaxlib 0.10's CPU LAPACK kernels split a batch of matrices over XLA's intra-op thread pool and block the
calling pool thread until the pieces finish (``jax::ParallelBatchMap`` → ``BlockingCounter::Wait``). When such
calls run at once on every pool thread (one per device of a multi-device CPU mesh, e.g. a sweep with
``mesh.runs = 2`` on forced host devices), no thread is left to run the pieces and the program hangs with an
idle CPU. A batch of one runs inline, so these wrappers turn ``vmap`` (runs, probes, sampled maps) into a loop
of single calls (``jax.custom_batching.sequential_vmap``). The numbers are the same: LAPACK factors each matrix
on its own either way. The matrices here are small (Krylov m × m) or few per device (a dense step Jacobian
per run), so the lost batch parallelism is cheap.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def one_at_a_time(fn):
    """fn(*arrays), with ``vmap`` of it a loop of single calls (jax.custom_batching.sequential_vmap). Only the
    arrays are passed: custom_vmap would trace fn's keyword defaults too, and jnp.linalg needs them static."""
    return jax.custom_batching.sequential_vmap(lambda *arrays: fn(*arrays))


eigh = one_at_a_time(jnp.linalg.eigh)                              # a [n, n] symmetric -> (w [n] ascending, v [n, n])
eigvalsh = one_at_a_time(jnp.linalg.eigvalsh)                      # a [n, n] symmetric -> w [n] ascending
eig = one_at_a_time(jnp.linalg.eig)                                # a [n, n] -> complex (w [n], v [n, n])
eigvals = one_at_a_time(jnp.linalg.eigvals)                        # a [n, n] -> complex w [n]
svd = one_at_a_time(jnp.linalg.svd)                                # a [m, n] -> (u [m, m], s descending, vh [n, n])
svdvals = one_at_a_time(partial(jnp.linalg.svd, compute_uv=False))  # a [m, n] -> s [min(m, n)] descending
solve = one_at_a_time(jnp.linalg.solve)                            # a [n, n], b [n] -> x [n] with a x = b
qr = one_at_a_time(jnp.linalg.qr)                                  # a [m, n] -> (q [m, k], r [k, n]), k = min(m, n)
