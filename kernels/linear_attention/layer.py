"""A multi-head linear-attention token mixer (Flax) on top of `linear_attention`: x: [B, T, D] -> [B, T, D].

Three kinds, each after the paper that made it standard (positions enter only through the decay; no RoPE):
  - "linear":    Katharopoulos et al. 2020 — q, k through elu+1 (positive features), normalised by q . z.
  - "retention": RetNet (Sun et al. 2023) — fixed per-head decays gamma_h = 1 - 2^(-5-h), per-head RMSNorm
                 of the output and a swish output gate.
  - "gla":       gated linear attention (Yang et al. 2023) with a scalar gate per head and step,
                 log alpha_t = log_sigmoid(x_t W_a + b) / tau (tau = 16 keeps early decays mild), then the
                 same output norm and swish gate as retention.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from .api import linear_attention

KINDS = ("linear", "retention", "gla")


def retention_log_decays(num_heads: int):
    """RetNet's per-head log decays log(1 - 2^(-5-h)), h = 0..H-1 (long memory for later heads)."""
    return jnp.log1p(-(2.0 ** (-5.0 - jnp.arange(num_heads, dtype=jnp.float32))))


class LinearAttention(nn.Module):
    """Linear-attention mixer. num_heads H, d_model D (head dim D // H unless head_dim is given)."""

    num_heads: int
    d_model: int
    kind: str = "linear"
    causal: bool = True
    head_dim: int | None = None
    chunk_size: int = 64
    impl: str = "auto"
    gate_logit_normalizer: float = 16.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        if self.kind not in KINDS:
            raise ValueError(f"LinearAttention: kind={self.kind!r} is not one of {KINDS}")
        H = self.num_heads
        Dh = self.head_dim or self.d_model // H
        dense = dict(use_bias=False, dtype=self.dtype)
        qkv = nn.DenseGeneral((3, H, Dh), name="qkv", **dense)(x)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]                       # [B, T, H, Dh]

        log_decay, normalize = None, False
        if self.kind == "linear":
            q, k = (jax.nn.elu(t) + 1 for t in (q, k))
            normalize = True
        elif self.kind == "retention":
            log_decay = retention_log_decays(H)
        else:
            logits = nn.Dense(H, dtype=jnp.float32, name="gate")(x.astype(jnp.float32))
            log_decay = jax.nn.log_sigmoid(logits) / self.gate_logit_normalizer   # [B, T, H]

        o = linear_attention(q, k, v, log_decay=log_decay, normalize=normalize, causal=self.causal,
                             chunk_size=self.chunk_size, impl=self.impl)
        if self.kind != "linear":
            o = nn.RMSNorm(dtype=self.dtype, name="head_norm")(o)
            o = o * nn.swish(nn.DenseGeneral((H, Dh), name="out_gate", **dense)(x))
        return nn.DenseGeneral(self.d_model, axis=(-2, -1), name="out", **dense)(o)
