"""The per-chunk tile algebra of the Pallas kernels, shared by the GPU (Triton) and TPU (Mosaic) kernels.

Each function takes tiles already loaded from memory (q, k: [C, Dk or a Dk block]; v, do: [C, Dv or a Dv
block]) and a float32 state tile, and returns float32 results. Only the loads, stores, grids and
where the state lives (registers on GPU, VMEM scratch on TPU) differ between the two kernel files.

Decay within a chunk (b: chunk-local inclusive cumulative log decay in base 2, i.e. prescaled by log2(e)
by the caller, so every exponential is an exp2; b_C its last entry):
    W_ij = 2^(b_i - b_j) for i >= j, else 0         (intra-chunk weights, all <= 1 when g <= 0)
    e_q = 2^b   e_k = 2^(b_C - b)   e_C = 2^(b_C)

Forward (S: state entering the chunk):       o = (q k^T * W) v + (q e_q) S;  S' = e_C S + (k e_k)^T v
dq (forward sweep, S over a Dk block):       dq = (do v^T * W) k + (do S^T) e_q
dk (reverse sweep, dS = dL/dS' over a Dk block): dk = (do v^T * W)^T q + (v dS^T) e_k;  dS <- e_C dS + (q e_q)^T do
dv (reverse sweep, dS over a Dv block):      dv = (q k^T * W)^T do + (k e_k) dS;       dS <- e_C dS + (q e_q)^T do

Decay gradient. A pair (t, s <= t) enters the loss through w_ts = exp(G_t - G_s), which depends on g_r
exactly when s < r <= t; so dL/dg_r is the sum, over the pairs straddling r, of each pair's term
w_ts (q_t.k_s)(do_t.v_s) (S_0 counts as a source before the sequence, dS_T as a sink after it). The
kernels emit "gate rows" that split this sum by where s and t lie relative to r's chunk: inside it
(dv), s before / t inside (dq), s inside / t after (dk), s before / t after (dv). Summing pair terms
directly avoids the usual q.dq - k.dk identity followed by a reverse cumsum over the whole sequence,
which cancels catastrophically (its float32 error grows with T times the decay rate).

Normaliser (normalize=True). den_t is the forward with v replaced by a ones column, so its state is a key
sum z: [1, Dk] and its tiles are row/column sums, not matmuls: den = rowsum(q k^T * W) + (q e_q) . z,
z' = e_C z + colsum(k e_k). Appending the column to v would pad Dv 128 to 256 and double every tile;
instead the kernels take den's in-chunk part from their own score tile and load z, the key sum entering
each chunk, which key_sums computes in XLA (in the backward likewise dz, the gradient of the one leaving
each chunk). In the backward the ones column's cotangent is dden_t = -(do_t . o_t) / (den_t + eps) and
v's is do / (den + eps) (both computed by the caller); it adds dden_t to every entry of row t of do v^T
(dq, dk), dden z to dq's inter-chunk term and dz to dk's, and its decay-gradient pairs: in the chunk
(dv, one feature block only), spanning it (key_sums.span_rows).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .reference import NORMALIZE_EPS

F32 = jnp.float32
LOG2E = 1.4426950408889634  # log2(e): natural-log decays times this are base-2 exponents


class Decay(NamedTuple):
    """Per-chunk decay factors; w is the [C, C] causal mask (bool) when there is no decay."""

    w: jax.Array
    e_q: jax.Array | None      # [C, 1]
    e_k: jax.Array | None      # [C, 1]
    e_c: jax.Array | None      # scalar or [1, 1]


class Norm(NamedTuple):
    """The normaliser's backward operands (pallas.py -> kernels): dden [B, H, T] float32, the ones
    column's cotangent; zs [B, H, N, 1, Dk], the key sum entering each chunk, and dzs [B, H, N, 1, Dk], the
    gradient of the key sum leaving each chunk (both from key_sums, in the input dtype)."""

    dden: jax.Array
    zs: jax.Array
    dzs: jax.Array


def decay(C: int, b_col=None, b_row=None, b_last=None) -> Decay:
    """b_col: [C, 1], b_row: [1, C] (the same values, base-2 log decays), b_last: scalar or [1, 1];
    all None for no decay."""
    causal = jax.lax.broadcasted_iota(jnp.int32, (C, C), 0) >= jax.lax.broadcasted_iota(jnp.int32, (C, C), 1)
    if b_col is None:
        return Decay(causal, None, None, None)
    # Mask before exp: above the diagonal b_i - b_j > 0 and could overflow.
    w = jnp.exp2(jnp.where(causal, b_col - b_row, -jnp.inf))
    return Decay(w, jnp.exp2(b_col), jnp.exp2(b_last - b_col), jnp.exp2(b_last))


def _dot(a, b, *, ta=False, tb=False, precision=None):
    """a @ b with optional transposes, float32 accumulation."""
    dims = (((0 if ta else 1,), (1 if tb else 0,)), ((), ()))
    return jax.lax.dot_general(a, b, dims, precision=precision, preferred_element_type=F32)


def _weigh(s, d: Decay):
    return jnp.where(d.w, s, 0.0) if d.e_q is None else s * d.w


def _scale_rows(x, e):
    """x * e (per row) rounded back to x's dtype, for the matmul that follows."""
    return x if e is None else (x.astype(F32) * e).astype(x.dtype)


def _decay_state(S, d: Decay):
    return S if d.e_c is None else S * d.e_c


def fwd(q, k, v, S, d: Decay, precision=None, z=None, store_den=None):
    """-> (o [C, BV] float32, S' [Dk, BV] float32). With z (normalize: the key sum entering the chunk,
    [1, Dk] in the input dtype, from key_sums) o is divided by den + eps, and store_den(den [C, 1]) is
    called as soon as den is known."""
    # q e_q . z = e_q (q . z) is read from the loaded q before the matmuls and den stored as soon as it is
    # known, so neither the q tile nor den's store crosses the matmuls; o is divided at the end (register
    # counts of each choice: docs/kernels.md).
    if z is not None:
        qz = _rowsum(q.astype(F32) * z)
    s = _weigh(_dot(q, k, tb=True, precision=precision), d)
    if z is not None:
        den = _rowsum(s) + (qz if d.e_q is None else qz * d.e_q)
        store_den(den)
    o = _dot(s.astype(v.dtype), v, precision=precision)
    o = o + _dot(_scale_rows(q, d.e_q), S.astype(q.dtype), precision=precision)
    S = _decay_state(S, d) + _dot(_scale_rows(k, d.e_k), v, ta=True, precision=precision)
    return (o, S) if z is None else (o / (den + NORMALIZE_EPS), S)


def _do_v(do, v, d: Decay, dden, precision):
    """(do v^T + dden 1^T) * W: [C, C]; dden ([C, 1], the ones column's cotangent) only with normalize."""
    p = _dot(do, v, tb=True, precision=precision)
    return _weigh(p if dden is None else p + dden, d)


def dq(k, v, do, S, d: Decay, precision=None, q=None, z=None, dden=None):
    """k: [C, BK]; v, do: [C, Dv]; S: [BK, Dv] -> (dq [C, BK], S', gate rows [C, 1] or None). Normalize: z
    [1, BK], the key sum entering the chunk (from key_sums), and dden [C, 1]; else both None.

    Gate rows (given q): pairs (s before the chunk, t = this row): e_q q_t . (do_t S^T), summed over the block."""
    p = _do_v(do, v, d, dden, precision)
    inter = _dot(do, S.astype(do.dtype), tb=True, precision=precision)
    if z is not None:
        inter = inter + dden * z
    if d.e_q is not None:
        inter = inter * d.e_q
    rows = None if q is None else _rowsum(q.astype(F32) * inter)
    out = _dot(p.astype(k.dtype), k, precision=precision) + inter
    S = _decay_state(S, d) + _dot(_scale_rows(k, d.e_k), v, ta=True, precision=precision)
    return out, S, rows


def dk(q, v, do, dS, d: Decay, precision=None, k=None, dz=None, dden=None):
    """q: [C, BK]; v, do: [C, Dv]; dS: [BK, Dv] (gradient of the state leaving the chunk)
    -> (dk, dS entering, gate rows [C, 1] or None). Normalize: dz [1, BK], the gradient of the key sum
    leaving the chunk (from key_sums), and dden [C, 1]; else both None.

    Gate rows (given k): pairs (s = this row, t after the chunk): e_k k_s . (v_s dS^T), summed over the block."""
    # With dz the inter-chunk term goes first, so dz is dead before the do v^T matmul; without it the plain
    # kernel keeps the other order (register counts: docs/kernels.md).
    if dz is None:
        p = _do_v(do, v, d, dden, precision)
    inter = _dot(v, dS.astype(v.dtype), tb=True, precision=precision)
    if dz is not None:
        inter = inter + dz
        p = _do_v(do, v, d, dden, precision)
    if d.e_k is not None:
        inter = inter * d.e_k
    rows = None if k is None else _rowsum(k.astype(F32) * inter)
    out = _dot(p.astype(q.dtype), q, ta=True, precision=precision) + inter
    dS = _decay_state(dS, d) + _dot(_scale_rows(q, d.e_q), do, ta=True, precision=precision)
    return out, dS, rows


def dv(q, k, do, dS, d: Decay, precision=None, v=None, S_prev=None, dden=None):
    """q, k: [C, Dk]; do: [C, BV]; dS: [Dk, BV] -> (dv [C, BV], dS entering, gate rows [C, 1] or None).

    Gate rows (given v and S_prev, the state entering the chunk, both over this Dv block): for each step
    r, the pairs straddling it that lie inside the chunk (s < r <= t) plus those spanning the whole chunk
    (s before, t after: e_C <S_prev, dS>). dden ([C, 1], normalize, in one feature block only; zeros in the
    others) adds the ones column's pairs inside the chunk."""
    a = _weigh(_dot(q, k, tb=True, precision=precision), d)
    rows = None
    if v is not None:
        C = a.shape[0]
        pv = _dot(do, v, tb=True, precision=precision)
        m = a * (pv if dden is None else pv + dden)                # m_ts: one pair's share of dL/dlog w_ts
        r, c = (jax.lax.broadcasted_iota(jnp.int32, (C, C), i) for i in (0, 1))
        earlier = jnp.where(c < r, 1.0, 0.0).astype(q.dtype)                                   # [r, s]: s < r
        below = _dot(earlier, m.astype(q.dtype), tb=True, precision=precision)                  # [r, t]
        spanning = _total(S_prev.astype(F32) * dS) * d.e_c
        rows = _rowsum(jnp.where(c >= r, below, 0.0)) + spanning                                # t >= r
    out = _dot(a.astype(do.dtype), do, ta=True, precision=precision)
    out = out + _dot(_scale_rows(k, d.e_k), dS.astype(k.dtype), precision=precision)
    dS = _decay_state(dS, d) + _dot(_scale_rows(q, d.e_q), do, ta=True, precision=precision)
    return out, dS, rows


def _rowsum(x):
    return jnp.sum(x, axis=1, keepdims=True)


def _total(x):
    return jnp.sum(_rowsum(x), axis=0, keepdims=True)
