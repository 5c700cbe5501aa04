"""The convolutional network of edge-of-stability studies: [conv -> activation -> pool] x L -> linear readout.

Works on 1-D signals (MNIST-1D, x: [B, L] or [B, L, C]) and images (CIFAR-10, x: [B, H, W, C]); the
convolution is 1-D or 2-D accordingly.

Two implementations of the same convolution, with the same parameters (``Conv_i/kernel: [*K, C_in, C_out]``,
``Conv_i/bias: [C_out]``), so a checkpoint of one loads into the other:

- ``conv_impl="xla"``: ``lax.conv_general_dilated`` (cuDNN on GPU). The default of a single run on GPU / TPU.
- ``conv_impl="gemm"``: im2col (K^d shifted slices concatenated on channels) and one matmul. A sweep builds
  this form (``model.for_vmap()``) because ``jax.vmap`` over parameter sets turns the XLA convolution into a
  grouped convolution (``feature_group_count = runs``) whose weight gradient is a ``batch_group_count`` conv
  that XLA:GPU expands into a dense convolution with a block-diagonal filter: runs× the FLOPs per run
  (cf. jax-ml/jax#13800; measured in docs/sweeps.md). Under vmap the im2col form is a batched
  matmul (and its transpose), which batches at the cost of one run per run. It holds K^d× the layer's input
  in memory, which is small for the 1-D and small-image networks of these studies.
- ``conv_impl="auto"`` (default): "gemm" on CPU, "xla" elsewhere: XLA:CPU runs the weight-gradient
  convolution far slower inside a ``lax.scan`` (where training steps run) than outside one (docs/sweeps.md).

Pooling (window 2, stride 2) is a reshape and a max/mean: the same forward values as ``nn.max_pool`` and a
cheaper gradient than ``select_and_scatter`` (docs/sweeps.md); at exact ties the max's
gradient is shared between the tied inputs instead of going to the first one.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxlab.config import require, require_choice
from jaxlab.models.layers import ACTIVATIONS, check_common, check_positive, inits, register_model, token_data

CONV_IMPLS = ("auto", "xla", "gemm")


def patches(x, kernel_size: Sequence[int]):
    """im2col for a stride-1 'SAME' convolution: x: [B, *S, C] -> [B, *S, prod(K) * C].

    Channel index ``o * C + c`` holds input channel c at kernel offset o (row-major over the K dims), matching
    ``kernel.reshape(-1, C_out)`` of a ``[*K, C, C_out]`` kernel; padding is lax's SAME (lo = (k - 1) // 2).
    """
    spatial = x.shape[1:-1]
    pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_size]
    xp = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    views = [xp[(slice(None), *(slice(o, o + s) for o, s in zip(offset, spatial)))]
             for offset in itertools.product(*(range(k) for k in kernel_size))]
    return jnp.concatenate(views, axis=-1)


class GemmConv(nn.Module):
    """Stride-1 'SAME' convolution as im2col + matmul: x: [B, *S, C] -> [B, *S, features]; nn.Conv's params."""

    features: int
    kernel_size: Sequence[int]
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros
    param_dtype: Any = jnp.float32  # as nn.Conv

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, x.shape[-1], self.features),
                            self.param_dtype)
        p = patches(x, self.kernel_size)
        # Batch and space flattened into one row axis: the bias gradient is then one reduction over rows, which
        # XLA:CPU otherwise rewrites into a slow reduce-window over the middle axes of a vmapped [R, B, *S, F].
        y = p.reshape(-1, p.shape[-1]) @ kernel.reshape(-1, self.features)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype)[None, :]
        return y.reshape(*x.shape[:-1], self.features)


def pool2(x, kind: str):
    """Non-overlapping window-2 pooling over every spatial axis (a trailing odd element is dropped, as VALID).

    x: [B, *S, C] -> [B, *(S // 2), C].
    """
    if kind == "none":
        return x
    spatial = x.shape[1:-1]
    x = x[(slice(None), *(slice(0, s // 2 * 2) for s in spatial))]
    split = [d for s in spatial for d in (s // 2, 2)]
    x = x.reshape(x.shape[0], *split, x.shape[-1])
    window_axes = tuple(2 + 2 * i for i in range(len(spatial)))
    return x.max(axis=window_axes) if kind == "max" else x.mean(axis=window_axes)


def check_cnn(m, config) -> None:
    check_common(m)
    check_positive(m, "channels", "kernel_size")
    require_choice("model.pool", m.pool, ("max", "avg", "none"))
    require_choice("model.conv_impl", m.conv_impl, CONV_IMPLS)
    require(not token_data(config), "model.name", m.name,
            f"is for classification; data.name={config.data.name!r} needs 'transformer'")


@register_model("cnn", from_data={"num_outputs": "num_classes"}, check=check_cnn)
class CNN(nn.Module):
    """x: [B, L] | [B, L, C] | [B, H, W, C] -> [B, num_outputs]. pool: max | avg | none."""

    num_outputs: int
    channels: Sequence[int] = (32, 32)
    kernel_size: int = 3
    activation: str = "relu"
    pool: str = "max"
    use_bias: bool = True
    init_scheme: str = "lecun"
    conv_impl: str = "auto"  # auto | xla | gemm (see the module docstring); same params either way

    @nn.nowrap
    def for_vmap(self) -> Any:
        """The same network in the form that batches well under ``jax.vmap`` over parameter sets."""
        return self.clone(conv_impl="gemm")

    @nn.compact
    def __call__(self, x):
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"CNN.conv_impl={self.conv_impl!r}: must be one of {CONV_IMPLS}")
        if x.ndim == 2:  # a 1-D signal with one channel
            x = x[..., None]
        spatial = x.ndim - 2
        act = ACTIVATIONS[self.activation]
        impl = self.conv_impl
        if impl == "auto":
            impl = "gemm" if jax.default_backend() == "cpu" else "xla"
        conv = nn.Conv if impl == "xla" else GemmConv
        for i, c in enumerate(self.channels):
            fan_in = x.shape[-1] * self.kernel_size ** spatial
            kernel_init, bias_init = inits(self.init_scheme, fan_in)
            kw = dict(padding="SAME") if impl == "xla" else {}
            x = conv(c, (self.kernel_size,) * spatial, use_bias=self.use_bias, kernel_init=kernel_init,
                     bias_init=bias_init, name=f"Conv_{i}", **kw)(x)
            x = pool2(act(x), self.pool)
        x = x.reshape(x.shape[0], -1)
        kernel_init, bias_init = inits(self.init_scheme, x.shape[-1])
        return nn.Dense(self.num_outputs, use_bias=self.use_bias, kernel_init=kernel_init, bias_init=bias_init)(x)
