"""Attention mixers by name, for the Transformer LM.

Every entry is a Flax module constructed as ``cls(num_heads=H, d_model=D, causal=True, dtype=...)`` with
``__call__(x: [B, T, D]) -> [B, T, D]``. The LM also passes the options a mixer declares as fields: ``conv_size=K``
(K > 0: a short causal convolution of q, k, v, ``kernels.linear_attention.ShortConv``; every built-in kind),
``output_gate`` (retention and gla) and ``gate_bias_init`` (gla). Register new kinds with
``@register_attention("name")``; the LM picks one by ``config.model.attention``. Linear kinds (linear | retention | gla) live in ``attention_linear.py``.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.kernels.linear_attention import ShortConv
from jaxlab.registry import registrar

ATTENTION: dict[str, type[nn.Module]] = {}


register_attention = registrar(ATTENTION)


def rope(x, positions, base: float = 10000.0):
    """Rotary position embedding. x: [B, T, H, Dh] (Dh even), positions: [T] -> [B, T, H, Dh]."""
    half = x.shape[-1] // 2
    freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions[:, None].astype(jnp.float32) * freqs[None, :]          # [T, half]
    sin, cos = jnp.sin(angles)[None, :, None, :], jnp.cos(angles)[None, :, None, :]
    acc = jnp.promote_types(x.dtype, jnp.float32)  # float32 for low precision, float64 kept (Hessian tests)
    x1, x2 = x[..., :half].astype(acc), x[..., half:].astype(acc)
    out = jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
    return out.astype(x.dtype)


def dot_product_attention(q, k, v, causal: bool):
    """q, k, v: [B, T, H, Dh] -> [B, T, H, Dh]. jax.nn.dot_product_attention (cuDNN when it fits) computes the
    softmax in float32 whatever the inputs; float64 inputs (dense-Hessian tests) take the plain form instead."""
    if q.dtype != jnp.float64:
        return jax.nn.dot_product_attention(q, k, v, is_causal=causal)
    logits = jnp.einsum("bthd,bshd->bhts", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
    if causal:
        T = q.shape[1]
        logits = jnp.where(jnp.tril(jnp.ones((T, T), bool)), logits, -jnp.inf)
    return jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(logits, axis=-1), v)


class QKVProjection(nn.Module):
    """x: [B, T, D] -> q, k, v: [B, T, H, D/H] (no bias, as in most modern LMs)."""

    num_heads: int
    d_model: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        head_dim = self.d_model // self.num_heads
        proj = nn.DenseGeneral((3, self.num_heads, head_dim), use_bias=False, dtype=self.dtype, name="qkv")(x)
        return proj[:, :, 0], proj[:, :, 1], proj[:, :, 2]


class OutProjection(nn.Module):
    """o: [B, T, H, Dh] -> [B, T, D]."""

    d_model: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, o):
        return nn.DenseGeneral(self.d_model, axis=(-2, -1), use_bias=False, dtype=self.dtype, name="out")(o)


@register_attention("softmax")
class SoftmaxAttention(nn.Module):
    """Multi-head softmax attention with RoPE, via ``jax.nn.dot_product_attention`` (cuDNN on GPU when it fits).
    x: [B, T, D] -> [B, T, D]; conv_size K > 0: a short causal convolution of q, k, v before RoPE."""

    num_heads: int
    d_model: int
    causal: bool = True
    conv_size: int = 0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        q, k, v = QKVProjection(self.num_heads, self.d_model, self.dtype)(x)
        if self.conv_size:
            q, k, v = (ShortConv(self.conv_size, self.dtype, name=f"conv_{n}")(t) for n, t in zip("qkv", (q, k, v)))
        pos = jnp.arange(x.shape[1])
        q, k = rope(q, pos), rope(k, pos)
        o = dot_product_attention(q, k, v, self.causal)
        return OutProjection(self.d_model, self.dtype)(o)
