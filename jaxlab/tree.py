"""Small pytree helpers shared across jaxlab."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def tree_norm(tree):
    """Euclidean norm of all leaves together, accumulated in float32."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))
