"""Activations and initialisers by name, shared by the models."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "softplus": nn.softplus,
    "silu": nn.silu,
    "identity": lambda x: x,
}

# (kernel_init, bias_init). "torch" is PyTorch's nn.Linear/Conv default (U(±1/sqrt(fan_in)) for both),
# which the edge-of-stability papers (Cohen et al., 2021) used.
INITS = {
    "lecun": (nn.initializers.lecun_normal(), nn.initializers.zeros),
    "he": (nn.initializers.he_normal(), nn.initializers.zeros),
    "xavier": (nn.initializers.xavier_uniform(), nn.initializers.zeros),
    "torch": (nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"), None),
}


def torch_bias_init(fan_in: int):
    bound = 1.0 / fan_in ** 0.5

    def init(key, shape, dtype=jnp.float32):
        import jax

        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def inits(name: str, fan_in: int):
    kernel, bias = INITS[name]
    return kernel, (bias if bias is not None else torch_bias_init(fan_in))
