"""Linear attention kinds for the Transformer LM: linear | retention | gla, all through kernels.linear_attention.

Each is kernels' LinearAttention mixer with its kind fixed, so it fits the registry's constructor
``cls(num_heads=H, d_model=D, causal=True, dtype=...)``; `impl="auto"` picks the Pallas kernels on GPU and
TPU and the chunked XLA form elsewhere. See kernels/linear_attention/layer.py for what each kind is.
"""
from __future__ import annotations

from jaxlab.models.attention import register_attention
from jaxlab.kernels.linear_attention import LinearAttention


@register_attention("linear")
class Linear(LinearAttention):
    kind: str = "linear"


@register_attention("retention")
class Retention(LinearAttention):
    kind: str = "retention"


@register_attention("gla")
class GatedLinear(LinearAttention):
    kind: str = "gla"
