"""A multi-head linear-attention token mixer (Flax) on top of `linear_attention`: x: [B, T, D] -> [B, T, D].

Three kinds, each after the paper that made it standard (positions enter only through the decay; no RoPE):
  - "linear":    Katharopoulos et al. 2020 — q, k through elu+1 (positive features), normalised by q . z.
  - "retention": RetNet (Sun et al. 2023) — fixed per-head decays gamma_h = 1 - 2^(-5-h), per-head RMSNorm
                 of the output and a swish output gate.
  - "gla":       gated linear attention (Yang et al. 2023) with a scalar gate per head and step,
                 log alpha_t = log_sigmoid(x_t W_a + b) / tau (tau = 16 keeps early decays mild), then the
                 same output norm and swish gate as retention.

``conv_size`` K > 0 adds a short depthwise causal convolution over time to q, k and v after their projection
(the "short conv" of H3, Mamba, Based and GLA; fla's ``use_short_conv``): each channel mixes its own last K
steps, so a key can be bound to the token before it. Without it a linear mixer sees positions only through its
decay and cannot form the previous-token step of associative recall. ``output_gate=False`` drops retention's and
gla's swish output gate (kept by default, as in the papers; "linear" has none). ``gate_bias_init`` b starts gla's
gate logits at b: initial decays exp(log_sigmoid(b) / tau), 0.958 per step at b = 0, 0.997 at b = 3 (an LSTM
forget-gate bias: long memory at the start).
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


def short_conv(x, w):
    """Depthwise causal convolution over time: y_t = sum_{j<K} w[j] * x_{t-j}, zeros before the start.

    x: [B, T, *C]; w: [K, *C] (one filter per channel; w[0] weighs the current step) -> y: [B, T, *C].
    """
    K, T = w.shape[0], x.shape[1]
    xp = jnp.pad(x, [(0, 0), (K - 1, 0)] + [(0, 0)] * (x.ndim - 2))
    return sum(xp[:, K - 1 - j: K - 1 - j + T] * w[j][None, None] for j in range(K))


class ShortConv(nn.Module):
    """Learned :func:`short_conv` of kernel size ``size``, x: [B, T, *C] -> [B, T, *C]. Init as PyTorch's
    depthwise Conv1d: U(±1/sqrt(K)); no bias."""

    size: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        bound = self.size ** -0.5

        def init(key, shape, dtype=jnp.float32):
            return jax.random.uniform(key, shape, dtype, -bound, bound)
        w = self.param("kernel", init, (self.size,) + x.shape[2:])
        return short_conv(x, w.astype(self.dtype))


class LinearAttention(nn.Module):
    """Linear-attention mixer, x: [B, T, D] -> [B, T, D]. num_heads H, d_model D (head dim D // H unless head_dim
    is given); conv_size K > 0: a short causal convolution of q, k, v; output_gate: retention's and gla's swish
    output gate; gate_bias_init: gla's gate bias at init (module docstring)."""

    num_heads: int
    d_model: int
    kind: str = "linear"
    causal: bool = True
    head_dim: int | None = None
    chunk_size: int = 64
    impl: str = "auto"
    gate_logit_normalizer: float = 16.0
    conv_size: int = 0
    output_gate: bool = True
    gate_bias_init: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        if self.kind not in KINDS:
            raise ValueError(f"LinearAttention: kind={self.kind!r} is not one of {KINDS}")
        H = self.num_heads
        Dh = self.head_dim or self.d_model // H
        dense = dict(use_bias=False, dtype=self.dtype)
        qkv = nn.DenseGeneral((3, H, Dh), name="qkv", **dense)(x)                # [B, T, 3, H, Dh]
        if self.conv_size:
            qkv = ShortConv(self.conv_size, self.dtype, name="conv")(qkv)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]                       # [B, T, H, Dh]

        log_decay, normalize = None, False
        if self.kind == "linear":
            q, k = (jax.nn.elu(t) + 1 for t in (q, k))
            normalize = True
        elif self.kind == "retention":
            log_decay = retention_log_decays(H)
        else:
            logits = nn.Dense(H, dtype=jnp.float32, bias_init=nn.initializers.constant(self.gate_bias_init),
                              name="gate")(x.astype(jnp.float32))
            log_decay = jax.nn.log_sigmoid(logits) / self.gate_logit_normalizer   # [B, T, H]

        o = linear_attention(q, k, v, log_decay=log_decay, normalize=normalize, causal=self.causal,
                             chunk_size=self.chunk_size, impl=self.impl)
        if self.kind != "linear":
            o = nn.RMSNorm(dtype=self.dtype, name="head_norm")(o)
        if self.kind != "linear" and self.output_gate:
            o = o * nn.swish(nn.DenseGeneral((H, Dh), name="out_gate", **dense)(x))
        return nn.DenseGeneral(self.d_model, axis=(-2, -1), name="out", **dense)(o)
