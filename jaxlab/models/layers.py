"""Activations, initialisers and the models themselves by name, shared by the models.

    @register_model("mlp", from_data={"num_outputs": "num_classes"}, check=check_mlp)
    class MLP(nn.Module): ...          # its fields with defaults are the ``model`` config section
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from jaxlab.config import require, require_choice
from jaxlab.registry import registrar

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


# ------------------------------------------------------------------------------------------------ the registry

class Model(NamedTuple):
    """A registered model. Its config section is ``module``'s constructor keyword arguments that have defaults
    (``config_defaults``); the ones without a default come from the dataset (``from_data``)."""
    module: type                                  # a flax.linen.Module class
    from_data: dict = {}                          # constructor argument -> Dataset attribute, e.g. num_classes
    check: Callable[[Any, Any], None] | None = None   # (config.model, config) -> None; ConfigError naming the key


MODELS: dict[str, Model] = {}
register_model = registrar(MODELS, Model)   # @register_model("mlp", from_data={"num_outputs": "num_classes"})


def config_defaults(module: type) -> dict:
    """{argument: default} of a Flax module's constructor, ``parent`` and ``name`` aside (what the config sets)."""
    return {f.name: f.default for f in dataclasses.fields(module)
            if f.name not in ("parent", "name") and f.default is not dataclasses.MISSING}


def check_common(m) -> None:
    """The checks every model with these arguments shares: activation and initialisation names."""
    if "activation" in m:
        require_choice("model.activation", m.activation, ACTIVATIONS)
    if "init_scheme" in m:
        require_choice("model.init_scheme", m.init_scheme, INITS)


def check_positive(m, *keys: str) -> None:
    """Each of ``keys`` a positive integer (a tuple's entries each, as for widths and channels)."""
    for key in keys:
        values = m[key] if isinstance(m[key], (tuple, list)) else None
        if values is None:
            require(m[key] > 0, f"model.{key}", m[key], "must be > 0")
            continue
        for i, v in enumerate(values):
            require(isinstance(v, int) and v > 0, f"model.{key}[{i}]", v, f"{key} must be positive integers")


def token_data(config) -> bool:
    """Whether config.data is a token dataset (a language model's), not a classification one."""
    return config.data.name in ("text", "mqar")
