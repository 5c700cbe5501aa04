"""Small helpers shared by the implementations: padding, chunk-local cumulative decay, matmul precision."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def pad_axis(x, axis: int, size: int, value=0):
    """Zero-pad x along `axis` up to `size` (no copy when it already has that size)."""
    n = x.shape[axis]
    if n == size:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - n)
    return jnp.pad(x, widths, constant_values=value)


def round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def next_pow2(n: int, minimum: int = 1) -> int:
    return max(minimum, 1 << max(0, (n - 1).bit_length()))


def chunk_local_cumsum(g, chunk: int, dtype=jnp.float32):
    """g: [B, T, H] with T % chunk == 0 -> inclusive cumulative sum restarted at every chunk."""
    B, T, H = g.shape
    b = jnp.cumsum(g.astype(dtype).reshape(B, T // chunk, chunk, H), axis=2)
    return b.reshape(B, T, H)


def matmul_precision(dtype):
    """Full float32 products for float32 inputs (TF32 or one bf16 pass would cost the 1e-5 accuracy);
    the native single pass for 16-bit inputs."""
    return jax.lax.Precision.HIGHEST if jnp.dtype(dtype).itemsize >= 4 else None


def platform() -> str:
    """'gpu' | 'tpu' | 'cpu' for the default backend."""
    p = jax.default_backend()
    return "gpu" if p in ("gpu", "cuda", "rocm") else p
