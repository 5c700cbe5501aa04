"""Fully-connected network of the edge-of-stability literature (e.g. tanh 40-200-200-10 on MNIST-1D)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from jaxlab.models.layers import ACTIVATIONS, inits


class MLP(nn.Module):
    """x: [B, ...] (flattened) -> [B, num_outputs]. Layers are Dense_0..Dense_L; the last is the linear readout."""

    widths: Sequence[int]
    num_outputs: int
    activation: str = "tanh"
    use_bias: bool = True
    init_scheme: str = "lecun"

    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        act = ACTIVATIONS[self.activation]
        sizes = (*self.widths, self.num_outputs)
        for i, width in enumerate(sizes):
            kernel_init, bias_init = inits(self.init_scheme, x.shape[-1])
            x = nn.Dense(width, use_bias=self.use_bias, kernel_init=kernel_init, bias_init=bias_init)(x)
            if i < len(sizes) - 1:
                x = act(x)
        return x
