"""The normaliser's key sums across chunks, computed in XLA around the Pallas kernels.

normalize=True divides each output row by den_t = q_t . z_t, with z_t the decayed sum of the keys up to
t. Inside a chunk the kernels get den from their own score tile (chunk_math); across chunks they need
the key sum entering each chunk (forward, dq sweep) and the gradient of the one leaving it (dk sweep).
Both are linear recurrences over N = T / C chunks of [Dk] vectors, computed here and loaded by the
kernels one chunk at a time (rather than carried inside them: docs/kernels.md says why). Their cost is
one more read of k in the forward and of q in the backward, and O(T Dk) flops.

Decays are in base 2 as the kernels take them: b [B, H, T] is the chunk-local inclusive cumulative
log2 decay, so a chunk's keys reach its end scaled by e_k = 2^(b_C - b) and a sum crosses a whole chunk
scaled by e_C = 2^(b_C). Shapes: k, q [B, T, H, D] (T a multiple of C); sums [B, H, N, 1, D], float32
except where a dtype is asked for. The kernels take them in their input dtype, as they round the state S for
their matmuls.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

F32 = jnp.float32


def _chunk_sums(x, w, C):
    """x: [B, T, H, D]; w: [B, H, T] row weights or None -> per-chunk sum of w_t x_t, [B, H, N, 1, D] f32."""
    B, T, H, D = x.shape
    x = x.astype(F32).reshape(B, T // C, C, H, D)
    if w is not None:
        x = x * w.reshape(B, H, T // C, C).transpose(0, 2, 3, 1)[..., None]
    return x.sum(2).transpose(0, 2, 1, 3)[:, :, :, None, :]


def _chunk_decay(b, C):
    """[B, H, N, 1, 1]: e_C of every chunk, or None without decay."""
    if b is None:
        return None
    return jnp.exp2(b[:, :, C - 1::C])[..., None, None]


def _scan(a, c, h0):
    """h_{n+1} = a_n h_n + c_n along axis 2 (a None: all ones), h_0 = h0 [B, H, 1, D] or zeros
    -> (h_0 .. h_{N-1}: [B, H, N, 1, D], h_N: [B, H, 1, D]). A log-depth associative scan: a sequential
    loop over N would be N small XLA steps."""
    if a is None:
        inc = jnp.cumsum(c, axis=2)
        if h0 is not None:
            inc = inc + h0[:, :, None]
    else:
        A, inc = jax.lax.associative_scan(lambda x, y: (x[0] * y[0], y[0] * x[1] + y[1]), (a, c), axis=2)
        if h0 is not None:
            inc = inc + A * h0[:, :, None]
    first = jnp.zeros_like(c[:, :, :1]) if h0 is None else h0[:, :, None].astype(F32)
    return jnp.concatenate([first, inc[:, :, :-1]], axis=2), inc[:, :, -1]


def entering(k, b, z0, C, dtype=F32):
    """The key sum entering each chunk and leaving the sequence: z0 [B, H, 1, D] or None (zeros)
    -> (zs [B, H, N, 1, D] in dtype, z_T [B, H, 1, D] float32)."""
    w = None
    if b is not None:  # e_k = 2^(b_C - b): each key's decay to its chunk's end
        B, H, T = b.shape
        bc = b.reshape(B, H, T // C, C)
        w = jnp.exp2(bc[..., -1:] - bc).reshape(B, H, T)
    zs, zT = _scan(_chunk_decay(b, C), _chunk_sums(k, w, C), z0)
    return zs.astype(dtype), zT


def leaving_grads(q, dden, b, dzT, C):
    """The gradient of the key sum leaving each chunk, from den's cotangent dden [B, H, T] (den_t =
    e_q q_t . z + ..., e_q = 2^b) and dzT [B, H, 1, D] or None, that of the sum leaving the sequence
    -> (dzs [B, H, N, 1, D], dz0 [B, H, 1, D]: that of the sum entering the sequence). A reverse scan:
    the gradient entering chunk n is e_C times the one leaving it plus chunk n's colsum(dden e_q q)."""
    w = dden if b is None else dden * jnp.exp2(b)
    a = _chunk_decay(b, C)
    dzs, dz0 = _scan(None if a is None else a[:, :, ::-1], _chunk_sums(q, w, C)[:, :, ::-1], dzT)
    return dzs[:, :, ::-1], dz0


def span_rows(zs, dzs, b, C):
    """The normaliser's decay-gradient pairs spanning each chunk (s before it, t after it), which count
    for every step r of the chunk: e_C <z entering, dz leaving>. zs, dzs: [B, H, N, 1, D] (entering and
    leaving_grads); b: [B, H, T] -> [B, H, T]."""
    x = _chunk_decay(b, C)[..., 0, 0] * jnp.sum(zs * dzs, axis=(-2, -1))
    return jnp.repeat(x, C, axis=-1)
