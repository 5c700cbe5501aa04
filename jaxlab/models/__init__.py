"""Models by name. Each registers its Flax module where it is defined (``@register_model``, jaxlab.models.layers), and
its config section is that module's constructor keyword arguments (as in big_vision and nanodo):

    config.model = model_config("cnn", channels=(16, 16))   # {"name": "cnn", **CNN's keyword arguments}
    model = get_model(config.model, dataset)                 # CNN(channels=..., ..., num_outputs=dataset.num_classes)
    params = init_params(model, key, dataset)

A model's ``apply({"params": p}, x)`` is pure. Adding one is a module with a registered class (and its import
below, so that it registers): nothing else in jaxlab names the models.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxlab.config import ConfigError
from jaxlab.models import attention_linear  # noqa: F401  (registers linear | retention | gla)
from jaxlab.models.attention import ATTENTION, register_attention
from jaxlab.models.cnn import CNN
from jaxlab.models.layers import MODELS, Model, config_defaults, register_model
from jaxlab.models.mlp import MLP
from jaxlab.models.transformer import TransformerLM
from jaxlab.registry import lookup

DEFAULT = "mlp"


def model_config(name: str = DEFAULT, **kwargs) -> ml_collections.ConfigDict:
    """The ``model`` section for model ``name``: ``name`` and its constructor's keyword arguments (their defaults,
    then ``kwargs``); an unknown name or argument is a ConfigError naming the choices."""
    section = dict(config_defaults(lookup(MODELS, "model.name", name).module))
    unknown = sorted(set(kwargs) - set(section))
    if unknown:
        raise ConfigError(f"config.model: {unknown} are not arguments of model {name!r}; choose from {sorted(section)}")
    return ml_collections.ConfigDict({"name": name, **section, **kwargs})


def default_config() -> ml_collections.ConfigDict:
    """The ``model`` section of the base config: the default model's arguments."""
    return model_config(DEFAULT)


def _arguments(cfg) -> dict:
    return {k: v for k, v in cfg.items() if k != "name"}


def get_model(cfg, dataset):
    """The Flax module of ``cfg`` (the model section): its arguments, plus those the dataset decides."""
    entry = lookup(MODELS, "model.name", cfg.name)
    return entry.module(**_arguments(cfg), **{k: getattr(dataset, a) for k, a in entry.from_data.items()})


def init_params(model, key, dataset):
    """Initialise on one example; returns the params pytree."""
    return model.init(key, jnp.asarray(dataset.x_train[:1]))["params"]


def param_count(params) -> int:
    return sum(int(p.size) for p in jax.tree.leaves(params))


def check(config):
    """Raise ConfigError naming the first bad ``model.*`` key: the section must be the named model's arguments
    (``model_config``), then the model's own checks."""
    m = config.model
    entry = lookup(MODELS, "model.name", m.name)
    want, got = set(config_defaults(entry.module)), set(_arguments(m))
    if want != got:
        raise ConfigError(f"config.model: model {m.name!r} takes {sorted(want)}, the section has "
                          f"{sorted(got)}; build it with jaxlab.models.model_config({m.name!r}, ...)")
    if entry.check is not None:
        entry.check(m, config)


__all__ = ["get_model", "init_params", "param_count", "model_config", "default_config", "check", "MODELS", "Model",
           "register_model", "ATTENTION", "register_attention", "MLP", "CNN", "TransformerLM"]
