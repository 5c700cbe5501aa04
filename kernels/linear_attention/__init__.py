"""Linear attention (plain, retention, gated) with reference, XLA and Pallas (GPU/TPU) implementations.

    from jaxlab.kernels.linear_attention import linear_attention, LinearAttention
"""
from .api import IMPLS, linear_attention, resolve_impl
from .layer import KINDS, LinearAttention

__all__ = ["IMPLS", "KINDS", "LinearAttention", "linear_attention", "resolve_impl"]
