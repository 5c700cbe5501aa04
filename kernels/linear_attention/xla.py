"""Chunked causal linear attention in plain jnp: the fallback on any backend (differentiated by autodiff).

The sequence is cut into N chunks of C steps. Within a chunk the quadratic form is exact; across chunks
a [Dk, Dv] state carries the past:

    o_chunk = ((q k^T) * M) v + (q * exp(b)) S_prev           M_ij = exp(b_i - b_j) for i >= j, else 0
    S_next  = exp(b_C) S_prev + (k * exp(b_C - b))^T v

with b the chunk-local inclusive cumulative log decay. Every exponent is <= 0 when the log decays are,
so nothing overflows however strong the decay. All chunks' intra terms are batched einsums; the
N-step state recurrence is a lax.scan over [B, H, Dk, Dv] float32 (float64 for float64 inputs) states.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .common import chunk_local_cumsum, matmul_precision, pad_axis


def chunked(q, k, v, g=None, s0=None, *, chunk_size=64, want_state=False):
    """Causal core. q (pre-scaled), k: [B, T, H, Dk]; v: [B, T, H, Dv]; g: [B, T, H] or None;
    s0: [B, H, Dk, Dv] or None. Returns (o: [B, T, H, Dv] in v's dtype, S_T float32 (float64 for float64
    inputs) or None)."""
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    dt = v.dtype
    acc = jnp.promote_types(dt, jnp.float32)  # accumulation and state dtype (float64 stays float64)
    prec = matmul_precision(dt)
    C = chunk_size
    Tp = -(-T // C) * C
    q, k, v = (pad_axis(x, 1, Tp) for x in (q, k, v))
    N = Tp // C
    qc, kc, vc = (x.reshape(B, N, C, H, x.shape[-1]) for x in (q, k, v))

    causal = jnp.tril(jnp.ones((C, C), bool))
    scores = jnp.einsum("bnihd,bnjhd->bnhij", qc, kc, preferred_element_type=acc, precision=prec)
    if g is None:
        scores = jnp.where(causal, scores, 0.0)
        qd, kd, chunk_decay = qc, kc, None
    else:
        b = chunk_local_cumsum(pad_axis(g, 1, Tp), C, acc).reshape(B, N, C, H)   # padded steps: g = 0
        bh = b.transpose(0, 1, 3, 2)                                             # [B, N, H, C]
        diff = bh[..., :, None] - bh[..., None, :]
        scores = scores * jnp.exp(jnp.where(causal, diff, -jnp.inf))
        b_last = b[:, :, -1:, :]                                                 # [B, N, 1, H]
        qd = (qc * jnp.exp(b)[..., None]).astype(dt)
        kd = (kc * jnp.exp(b_last - b)[..., None]).astype(dt)
        chunk_decay = jnp.exp(b_last[:, :, 0, :])                                # [B, N, H]
    o = jnp.einsum("bnhij,bnjhv->bnihv", scores.astype(dt), vc, preferred_element_type=acc,
                   precision=prec)

    # Per-chunk state increments, then the N-step recurrence for the state entering each chunk.
    incr = jnp.einsum("bnjhk,bnjhv->nbhkv", kd, vc, preferred_element_type=acc, precision=prec)
    if N == 1 and s0 is None:  # one chunk, zero state: nothing enters it (short sequences compile faster)
        S_T = incr[0]
    else:
        S = jnp.zeros((B, H, Dk, Dv), acc) if s0 is None else s0.astype(acc)
        if chunk_decay is None:
            def step(S, u):
                return S + u, S
            S_T, S_prev = jax.lax.scan(step, S, incr)
        else:
            def step(S, inp):
                u, a = inp
                return a[:, :, None, None] * S + u, S
            S_T, S_prev = jax.lax.scan(step, S, (incr, jnp.moveaxis(chunk_decay, 1, 0)))
        o = o + jnp.einsum("bnihk,nbhkv->bnihv", qd, S_prev.astype(dt), preferred_element_type=acc,
                           precision=prec)
    o = o.reshape(B, Tp, H, Dv)[:, :T].astype(dt)
    return o, (S_T if want_state else None)
