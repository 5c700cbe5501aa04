"""Fully-connected network of the edge-of-stability literature (e.g. tanh 40-200-200-10 on MNIST-1D)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from jaxlab.config import require
from jaxlab.models.layers import ACTIVATIONS, check_common, check_positive, inits, register_model, token_data


def check_mlp(m, config) -> None:
    check_common(m)
    check_positive(m, "widths")
    require(not token_data(config), "model.name", m.name,
            f"is for classification; data.name={config.data.name!r} needs 'transformer'")


@register_model("mlp", from_data={"num_outputs": "num_classes"}, check=check_mlp)
class MLP(nn.Module):
    """x: [B, ...] (flattened) -> [B, num_outputs]. Layers are Dense_0..Dense_L; the last is the linear readout.
    init_scheme: lecun | torch | he | xavier (jaxlab.models.layers.INITS)."""

    num_outputs: int
    widths: Sequence[int] = (200, 200)
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
