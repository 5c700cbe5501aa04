"""Decoder-only Transformer LM: token embedding -> L x [pre-norm attention, pre-norm MLP] -> norm -> tied readout."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxlab.config import require, require_choice
from jaxlab.models.attention import ATTENTION
from jaxlab.models.layers import ACTIVATIONS, check_common, check_positive, register_model, token_data


class Block(nn.Module):
    d_model: int
    num_heads: int
    mlp_ratio: int
    attention: str
    activation: str
    dtype: jnp.dtype
    conv_size: int = 0
    output_gate: bool = True
    gate_bias_init: float = 0.0

    @nn.compact
    def __call__(self, x):
        cls = ATTENTION[self.attention]
        options = {"conv_size": self.conv_size, "output_gate": self.output_gate,
                   "gate_bias_init": self.gate_bias_init}
        options = {k: v for k, v in options.items() if k in cls.__dataclass_fields__}  # those the mixer declares
        mixer = cls(num_heads=self.num_heads, d_model=self.d_model, dtype=self.dtype, name="attn", **options)
        x = x + mixer(nn.RMSNorm(dtype=self.dtype, name="norm_attn")(x))
        h = nn.RMSNorm(dtype=self.dtype, name="norm_mlp")(x)
        h = nn.Dense(self.mlp_ratio * self.d_model, use_bias=False, dtype=self.dtype, name="mlp_in")(h)
        h = nn.Dense(self.d_model, use_bias=False, dtype=self.dtype, name="mlp_out")(ACTIVATIONS[self.activation](h))
        return x + h


def check_transformer(m, config) -> None:
    check_common(m)
    check_positive(m, "d_model", "num_layers", "num_heads", "mlp_ratio", "max_len")
    require(m.d_model % m.num_heads == 0, "model.d_model", m.d_model,
            f"must be divisible by model.num_heads={m.num_heads}")
    require_choice("model.attention", m.attention, ATTENTION)
    require_choice("model.dtype", m.dtype, ("float32", "bfloat16", "float16"))
    require(token_data(config), "model.name", m.name,
            f"needs a token dataset (text | mqar), got data.name={config.data.name!r}")
    require(config.data.seq_len <= m.max_len, "data.seq_len", config.data.seq_len,
            f"exceeds model.max_len={m.max_len}")
    require(m.conv_size >= 0, "model.conv_size", m.conv_size, "must be >= 0 (0 = no short convolution)")
    if m.conv_size:  # a mixer without the option would silently ignore it
        require("conv_size" in ATTENTION[m.attention].__dataclass_fields__, "model.conv_size", m.conv_size,
                f"is not an option of model.attention={m.attention!r} (leave it at 0)")


@register_model("transformer", from_data={"vocab_size": "num_classes"}, check=check_transformer)
class TransformerLM(nn.Module):
    """tokens: [B, T] int32 -> logits: [B, T, vocab_size] float32. Positions enter through the mixer (RoPE for
    softmax, decays for the linear kinds) and, with conv_size K > 0, through a short causal convolution of every
    mixer's q, k, v over the last K tokens; output_gate=False drops retention's and gla's output gate;
    gate_bias_init: gla's gate bias at init (kernels.linear_attention.LinearAttention); dtype: the activations' (a
    name or a jnp dtype; parameters stay float32)."""

    vocab_size: int
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    attention: str = "softmax"
    max_len: int = 2048
    activation: str = "gelu"
    dtype: Any = "float32"
    conv_size: int = 0
    output_gate: bool = True
    gate_bias_init: float = 0.0

    @nn.compact
    def __call__(self, tokens):
        dtype = jnp.dtype(self.dtype)
        embed = nn.Embed(self.vocab_size, self.d_model, embedding_init=nn.initializers.normal(0.02), name="embed")
        x = embed(tokens).astype(dtype)
        for i in range(self.num_layers):
            x = Block(self.d_model, self.num_heads, self.mlp_ratio, self.attention, self.activation, dtype,
                      self.conv_size, self.output_gate, self.gate_bias_init, name=f"block_{i}")(x)
        x = nn.RMSNorm(dtype=dtype, name="norm_out")(x)
        return embed.attend(x.astype(jnp.promote_types(dtype, jnp.float32)))  # float64 models stay float64
