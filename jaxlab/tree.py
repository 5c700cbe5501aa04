"""Pytree algebra and leaf paths, shared by training, the optimisers and curvature (imports no jaxlab module).

Vectors in parameter space are pytrees like the parameters: ``tree_vdot(u, v)``, ``tree_norm(v)``,
``tree_axpy(a, x, y)``; random ones are drawn in one flat call (``tree_random_normal``). Leaves are named by
``path_str`` ('Dense_0/kernel'), the name weight-decay masks, layer shares and checkpoints use.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

PyTree = Any


def tree_vdot(a: PyTree, b: PyTree) -> jax.Array:
    """Σ_leaves ⟨a, b⟩ as a scalar (accumulated in the leaves' dtype)."""
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def tree_norm(a: PyTree) -> jax.Array:
    """Euclidean norm of all leaves together (logged norms); low-precision leaves are accumulated in float32.
    Krylov code (curvature) normalises with its own inner product instead, ``sqrt(tree_vdot(v, v))``, so that
    α, β and the norms of one iteration are the same reduction."""
    acc = lambda x: x.astype(jnp.promote_types(x.dtype, jnp.float32))  # noqa: E731
    return jnp.sqrt(sum(jnp.sum(jnp.square(acc(x))) for x in jax.tree.leaves(a)))


def tree_scale(a: PyTree, s) -> PyTree:
    return jax.tree.map(lambda x: (x * s).astype(x.dtype), a)


def tree_axpy(alpha, x: PyTree, y: PyTree) -> PyTree:
    """alpha·x + y."""
    return jax.tree.map(lambda u, w: (alpha * u + w).astype(w.dtype), x, y)


def _tree_random(sample, key: jax.Array, like: PyTree) -> PyTree:
    # One draw of the flat size, then unravelled: per-leaf threefry calls multiply compile time (~3 s for 6 leaves).
    flat, unravel = ravel_pytree(like)
    return unravel(sample(key, flat.shape, flat.dtype))


def tree_random_normal(key: jax.Array, like: PyTree) -> PyTree:
    """Standard normal pytree with the structure, shapes and dtypes of ``like``."""
    return _tree_random(jax.random.normal, key, like)


def tree_rademacher(key: jax.Array, like: PyTree) -> PyTree:
    """±1 pytree like ``like`` (Hutchinson probes)."""
    return _tree_random(jax.random.rademacher, key, like)


def path_str(path) -> str:
    """A tree_util key path as 'Dense_0/kernel' (``jax.tree_util.keystr`` without brackets and quotes)."""
    return jax.tree_util.keystr(tuple(path), simple=True, separator="/")


def leaf_paths(tree) -> PyTree:
    """The same structure as ``tree`` with each leaf replaced by its path string."""
    return jax.tree_util.tree_map_with_path(lambda p, _: path_str(p), tree)
