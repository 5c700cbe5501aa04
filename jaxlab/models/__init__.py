"""Models by name. Each builder returns a Flax module whose ``apply({"params": p}, x)`` is pure.

    model = get_model(config.model, dataset)
    params = init_params(model, key, dataset)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

import ml_collections

from jaxlab.config import require, require_choice
from jaxlab.models.attention import ATTENTION, register_attention
from jaxlab.models import attention_linear  # noqa: F401  (registers linear | retention | gla)
from jaxlab.models.cnn import CNN
from jaxlab.models.layers import ACTIVATIONS, INITS
from jaxlab.models.mlp import MLP
from jaxlab.models.transformer import TransformerLM


def _mlp(cfg, ds):
    return MLP(widths=tuple(cfg.widths), num_outputs=ds.num_classes, activation=cfg.activation,
               use_bias=cfg.use_bias, init_scheme=cfg.init)


def _cnn(cfg, ds):
    return CNN(channels=tuple(cfg.channels), num_outputs=ds.num_classes, kernel_size=cfg.kernel_size,
               activation=cfg.activation, pool=cfg.pool, use_bias=cfg.use_bias, init_scheme=cfg.init)


def _transformer(cfg, ds):
    return TransformerLM(vocab_size=ds.num_classes, d_model=cfg.d_model, num_layers=cfg.num_layers,
                         num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, attention=cfg.attention,
                         max_len=cfg.max_len, activation=cfg.activation, dtype=jnp.dtype(cfg.dtype),
                         conv_size=cfg.conv_size, output_gate=cfg.output_gate, gate_bias_init=cfg.gate_bias_init)


MODELS = {"mlp": _mlp, "cnn": _cnn, "transformer": _transformer}


def default_config() -> ml_collections.ConfigDict:
    """The ``model`` section."""
    return ml_collections.ConfigDict(dict(
        name="mlp",            # mlp | cnn | transformer
        widths=(200, 200),     # mlp: hidden widths
        activation="tanh",     # tanh | relu | gelu | elu | softplus | silu | identity
        use_bias=True,
        init="lecun",          # lecun | torch | he | xavier
        channels=(32, 32),     # cnn: channels of each conv-activation-pool block
        kernel_size=3,         # cnn
        pool="max",            # cnn: max | avg | none
        d_model=128,           # transformer
        num_layers=2,
        num_heads=4,
        mlp_ratio=4,
        attention="softmax",   # softmax | linear | retention | gla  (see jaxlab.models.attention)
        max_len=2048,
        conv_size=0,           # transformer: > 0 adds a short causal convolution (this many taps) to q, k, v
        output_gate=True,      # transformer: retention's and gla's swish output gate (others have none)
        gate_bias_init=0.0,    # transformer: gla's gate bias at init (3: decays 0.997 per step at the start)
        dtype="float32",       # activations dtype for the transformer (params stay float32)
    ))


def get_model(cfg, dataset):
    require_choice("model.name", cfg.name, MODELS)
    return MODELS[cfg.name](cfg, dataset)


def init_params(model, key, dataset):
    """Initialise on one example; returns the params pytree."""
    return model.init(key, jnp.asarray(dataset.x_train[:1]))["params"]


def param_count(params) -> int:
    return sum(int(p.size) for p in jax.tree.leaves(params))


def check(config):
    """Raise ConfigError naming the first bad ``model.*`` key."""
    m, ds_name = config.model, config.data.name
    require_choice("model.name", m.name, MODELS)
    require_choice("model.activation", m.activation, ACTIVATIONS)
    require_choice("model.init", m.init, INITS)
    for i, w in enumerate(m.widths):
        require(isinstance(w, int) and w > 0, f"model.widths[{i}]", w, "widths must be positive integers")
    for i, c in enumerate(m.channels):
        require(isinstance(c, int) and c > 0, f"model.channels[{i}]", c, "channels must be positive integers")
    require(m.kernel_size > 0, "model.kernel_size", m.kernel_size, "must be > 0")
    require_choice("model.pool", m.pool, ("max", "avg", "none"))
    for key in ("d_model", "num_layers", "num_heads", "mlp_ratio", "max_len"):
        require(m[key] > 0, f"model.{key}", m[key], "must be > 0")
    require(m.conv_size >= 0, "model.conv_size", m.conv_size, "must be >= 0 (0 = no short convolution)")
    if m.conv_size and m.attention in ATTENTION:  # output_gate means nothing to a mixer without a gate
        require("conv_size" in ATTENTION[m.attention].__dataclass_fields__, "model.conv_size", m.conv_size,
                f"is not an option of model.attention={m.attention!r} (leave it at 0)")
    require(m.d_model % m.num_heads == 0, "model.d_model", m.d_model,
            f"must be divisible by model.num_heads={m.num_heads}")
    require_choice("model.attention", m.attention, ATTENTION)
    require_choice("model.dtype", m.dtype, ("float32", "bfloat16", "float16"))
    lm_data = ds_name in ("text", "mqar")
    if m.name == "transformer":
        require(lm_data, "model.name", m.name, f"needs a token dataset (text | mqar), got data.name={ds_name!r}")
        require(config.data.seq_len <= m.max_len, "data.seq_len", config.data.seq_len,
                f"exceeds model.max_len={m.max_len}")
    else:
        require(not lm_data, "model.name", m.name, f"is for classification; data.name={ds_name!r} needs 'transformer'")


__all__ = ["get_model", "init_params", "param_count", "MODELS", "ATTENTION", "register_attention",
           "MLP", "CNN", "TransformerLM"]
