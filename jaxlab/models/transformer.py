"""Decoder-only Transformer LM: token embedding -> L x [pre-norm attention, pre-norm MLP] -> norm -> tied readout."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxlab.models.attention import ATTENTION
from jaxlab.models.layers import ACTIVATIONS


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


class TransformerLM(nn.Module):
    """tokens: [B, T] int32 -> logits: [B, T, vocab_size] float32. Positions enter through the mixer (RoPE for
    softmax, decays for the linear kinds) and, with conv_size K > 0, through a short causal convolution of every
    mixer's q, k, v over the last K tokens; output_gate=False drops retention's and gla's output gate;
    gate_bias_init: gla's gate bias at init (kernels.linear_attention.LinearAttention)."""

    vocab_size: int
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    attention: str = "softmax"
    max_len: int = 2048
    activation: str = "gelu"
    dtype: jnp.dtype = jnp.float32
    conv_size: int = 0
    output_gate: bool = True
    gate_bias_init: float = 0.0

    @nn.compact
    def __call__(self, tokens):
        embed = nn.Embed(self.vocab_size, self.d_model, embedding_init=nn.initializers.normal(0.02), name="embed")
        x = embed(tokens).astype(self.dtype)
        for i in range(self.num_layers):
            x = Block(self.d_model, self.num_heads, self.mlp_ratio, self.attention, self.activation, self.dtype,
                      self.conv_size, self.output_gate, self.gate_bias_init, name=f"block_{i}")(x)
        x = nn.RMSNorm(dtype=self.dtype, name="norm_out")(x)
        return embed.attend(x.astype(jnp.promote_types(self.dtype, jnp.float32)))  # float64 models stay float64
