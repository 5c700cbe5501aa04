"""Accelerator kernels, independent of jaxlab (jaxlab imports kernels, never the reverse).

    from kernels.linear_attention import linear_attention
"""
