"""Linear attention (plain, retention, gated) with reference, XLA and Pallas (GPU/TPU) implementations.

    from jaxlab.kernels.linear_attention import linear_attention, LinearAttention
"""
from .api import IMPLS, linear_attention, resolve_impl
from .layer import KINDS, LinearAttention, ShortConv, short_conv

__all__ = ["IMPLS", "KINDS", "LinearAttention", "ShortConv", "linear_attention", "resolve_impl", "short_conv"]
