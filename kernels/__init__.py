"""Accelerator kernels, independent of the rest of jaxlab (jaxlab imports kernels, never the reverse).

Installed as ``jaxlab.kernels`` (``jaxlab/kernels`` is a link to this folder, so an installed jaxlab ships no
top-level ``kernels`` package that could clash with other distributions). Modules here import each other
relatively, so the same files serve ``python -m kernels.bench`` from the repository root:

    from jaxlab.kernels.linear_attention import linear_attention
"""
