"""Minibatches as a pure function of (key, step): no iterator state to checkpoint.

Each epoch is a fresh permutation seeded by ``fold_in(key, epoch)``; step ``s`` takes slice
``s mod steps_per_epoch`` of it (the ragged tail of each epoch is dropped).

A permutation is a sort, which costs far more than a small model's step on CPU; the trainer therefore builds
the few permutations a chunk of steps touches once per chunk (:func:`chunk_permutations`) and slices them
per step (:func:`batch_from_permutations`), with exactly the batches of :func:`sample_batch`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    return max(1, num_examples // batch_size)


def sample_batch(key, step, x, y, batch_size: int):
    """x: [N, ...], y: [N, ...] -> ([batch_size, ...], [batch_size, ...]) for this step. Jittable; step may be traced."""
    n = x.shape[0]
    per_epoch = steps_per_epoch(n, batch_size)
    epoch, index = step // per_epoch, step % per_epoch
    perm = epoch_permutation(key, epoch, n)
    idx = jax.lax.dynamic_slice_in_dim(perm, index * batch_size, batch_size)
    return jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)


def epoch_permutation(key, epoch, n: int):
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def chunk_permutations(key, first_step, num_steps: int, n: int, batch_size: int):
    """The permutations of every epoch that steps [first_step, first_step + num_steps) touch.

    Returns (first_epoch, perms: [E, n]) with E = num_steps // steps_per_epoch + 2 (static), enough for any start.
    """
    per_epoch = steps_per_epoch(n, batch_size)
    count = min(num_steps // per_epoch + 2, num_steps + 1)
    first_epoch = first_step // per_epoch
    perms = jax.vmap(lambda e: epoch_permutation(key, first_epoch + e, n))(jnp.arange(count))
    return first_epoch, perms


def batch_from_permutations(first_epoch, perms, step, x, y, batch_size: int):
    """The batch of ``sample_batch(key, step, ...)``, sliced from precomputed epoch permutations."""
    per_epoch = steps_per_epoch(x.shape[0], batch_size)
    perm = perms[step // per_epoch - first_epoch]
    idx = jax.lax.dynamic_slice_in_dim(perm, (step % per_epoch) * batch_size, batch_size)
    return jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)
