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

import jax
import jax.numpy as jnp


@jax.custom_batching.sequential_vmap
def eigh(a: jax.Array):
    """(w [n] ascending, v [n, n]) of the symmetric a [n, n]."""
    return jnp.linalg.eigh(a)


@jax.custom_batching.sequential_vmap
def eigvalsh(a: jax.Array) -> jax.Array:
    """Eigenvalues [n] (ascending) of the symmetric a [n, n]."""
    return jnp.linalg.eigvalsh(a)


@jax.custom_batching.sequential_vmap
def eig(a: jax.Array):
    """(w [n], v [n, n]) complex eigenpairs of the general a [n, n]."""
    return jnp.linalg.eig(a)


@jax.custom_batching.sequential_vmap
def eigvals(a: jax.Array) -> jax.Array:
    """Complex eigenvalues [n] of the general a [n, n]."""
    return jnp.linalg.eigvals(a)


@jax.custom_batching.sequential_vmap
def svd(a: jax.Array):
    """(u [m, m], s [min(m, n)] descending, vh [n, n]) of a [m, n]."""
    return jnp.linalg.svd(a)


@jax.custom_batching.sequential_vmap
def svdvals(a: jax.Array) -> jax.Array:
    """Singular values [min(m, n)] (descending) of a [m, n]."""
    return jnp.linalg.svd(a, compute_uv=False)


@jax.custom_batching.sequential_vmap
def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """x [n] with a [n, n] x = b [n]."""
    return jnp.linalg.solve(a, b)
