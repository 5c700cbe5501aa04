"""Pallas GPU kernels (lowered through Triton) for chunked causal linear attention, forward and backward.

Each program owns one (batch, head, feature block) and sweeps the chunks of the sequence in a
`fori_loop`, keeping its float32 state tile in registers: nothing per-chunk is written to HBM but the
outputs, so the forward reads v and writes o once, q and k once per Dv block ("fused chunk"). The
backward recomputes states instead of storing them, in three sweeps that own disjoint output blocks
(no atomics):

    dq: forward sweep over chunks, grid (Dk blocks, B, H), state S[kb, :]
    dk: reverse sweep,            grid (Dk blocks, B, H), state gradient dS[kb, :]
    dv: reverse sweep,            grid (Dv blocks, B, H), state gradient dS[:, vb]  (also dS_0)

Only when a decay gradient is wanted does the dq sweep store each chunk's entering state ([B, H, N, Dk,
Dv] in the input dtype, Dv/C times the size of q) for the dv sweep's share of that gradient (chunk_math).

The feature-block axis is the fastest-varying program id, so programs sharing q/k run together and
hit L2. Inputs are [B, T, H, D] with T a multiple of the chunk and D a power of two >= 16 (the caller
pads); b is the chunk-local cumulative log decay, [B, H, T] float32. The tile algebra is chunk_math.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from . import chunk_math

F32 = jnp.float32


def gpu_num_warps(cfg, d_max: int) -> int:
    """cfg.num_warps, else 8 warps at a padded head dimension ≥ 128, 4 below (docs/kernels.md)."""
    return cfg.num_warps or (8 if d_max >= 128 else 4)


def gpu_num_stages(cfg, one_stage: bool) -> int:
    """cfg.num_stages, else 2, or 1 (``one_stage``) where the normaliser makes two stages cost registers or
    spills: dq, the forward with decay, and dv with the decay gradient (compile statistics: docs/kernels.md)."""
    return cfg.num_stages or (1 if one_stage else 2)


def compiler_params(num_warps: int, num_stages: int):
    """Select the Triton lowering (the default GPU lowering is Mosaic GPU since JAX 0.9)."""
    try:
        from jax.experimental.pallas import triton as pltriton
        return pltriton.CompilerParams(num_warps=num_warps, num_stages=num_stages)
    except (ImportError, AttributeError):  # older JAX spelling
        from jax.experimental.pallas import gpu as plgpu
        return plgpu.TritonCompilerParams(num_warps=num_warps, num_stages=num_stages)


@functools.cache
def _num_sms() -> int:
    try:
        return int(jax.devices("gpu")[0].core_count)
    except Exception:  # noqa: BLE001 (no GPU: interpret mode, or lowering for another machine)
        return 132  # an H100 SXM


STATE_TILE = 64 * 128  # float32 state elements per program at most (no spills at 8 warps: docs/kernels.md)


def _block(D, cfg_block, programs_per_block, auto, other=0):
    """Feature-block size: cfg_block (clipped to D, and so that the [blk, other] state tile stays within
    STATE_TILE), halved (down to 32) while the grid would leave SMs idle. Each program sweeps the whole
    sequence, so with few (batch, head) pairs narrower blocks buy parallelism."""
    blk = min(cfg_block, D, max(16, STATE_TILE // other) if other else D)
    while auto and blk > 32 and (D // blk) * programs_per_block < _num_sms():
        blk //= 2
    return blk


def _decay(b_ref, n, C):
    if b_ref is None:
        return chunk_math.decay(C)
    b = b_ref[pl.ds(n * C, C)]
    return chunk_math.decay(C, b[:, None], b[None, :], b_ref[n * C + C - 1])


def _unpack(refs, flags):
    """Split the flat ref list into named refs; absent optional operands come back as None."""
    it = iter(refs)
    return [next(it) if f else None for f in flags]


def _fwd_kernel(*refs, C, N, has_decay, has_s0, want_state, norm, precision):
    q_ref, k_ref, v_ref, b_ref, s0_ref, zs_ref, o_ref, sT_ref, den_ref = _unpack(
        refs, (1, 1, 1, has_decay, has_s0, norm, 1, want_state, norm))
    S = s0_ref[...] if has_s0 else jnp.zeros((q_ref.shape[-1], v_ref.shape[-1]), F32)

    def body(n, S):
        rows = pl.ds(n * C, C)

        def store_den(den):
            den_ref[rows] = den.reshape(C)

        o, S = chunk_math.fwd(q_ref[rows, :], k_ref[rows, :], v_ref[rows, :], S, _decay(b_ref, n, C),
                              precision, z=zs_ref[n] if norm else None, store_den=store_den)
        o_ref[rows, :] = o.astype(o_ref.dtype)
        return S

    S = jax.lax.fori_loop(0, N, body, S)
    if want_state:
        sT_ref[...] = S


def _col(ref, n, C):
    """Rows n*C .. n*C + C - 1 of a [T] ref as a [C, 1] column (None passes through)."""
    return None if ref is None else ref[pl.ds(n * C, C)][:, None]


def _dq_kernel(*refs, C, N, has_decay, gate, has_s0, norm, precision):
    k_ref, v_ref, do_ref, q_ref, b_ref, s0_ref, dd_ref, zs_ref, dq_ref, rows_ref, h_ref = _unpack(
        refs, (1, 1, 1, gate, has_decay, has_s0, norm, norm, 1, gate, gate))
    S = s0_ref[...] if has_s0 else jnp.zeros((k_ref.shape[-1], v_ref.shape[-1]), F32)

    def body(n, S):
        rows = pl.ds(n * C, C)
        if gate:  # the dv sweep needs the state entering each chunk for the decay gradient
            h_ref[n] = S.astype(h_ref.dtype)
        q = q_ref[rows, :] if gate else None
        z = zs_ref[n] if norm else None
        dq, S, pairs = chunk_math.dq(k_ref[rows, :], v_ref[rows, :], do_ref[rows, :], S, _decay(b_ref, n, C),
                                     precision, q=q, z=z, dden=_col(dd_ref, n, C))
        dq_ref[rows, :] = dq.astype(dq_ref.dtype)
        if gate:
            rows_ref[rows] = pairs.reshape(C)
        return S

    jax.lax.fori_loop(0, N, body, S)


def _dk_kernel(*refs, C, N, has_decay, gate, has_dsT, norm, precision):
    q_ref, v_ref, do_ref, k_ref, b_ref, dsT_ref, dd_ref, dzs_ref, dk_ref, rows_ref = _unpack(
        refs, (1, 1, 1, gate, has_decay, has_dsT, norm, norm, 1, gate))
    dS = dsT_ref[...] if has_dsT else jnp.zeros((q_ref.shape[-1], v_ref.shape[-1]), F32)

    def body(i, dS):
        n = N - 1 - i
        rows = pl.ds(n * C, C)
        k = k_ref[rows, :] if gate else None
        dk, dS, pairs = chunk_math.dk(q_ref[rows, :], v_ref[rows, :], do_ref[rows, :], dS, _decay(b_ref, n, C),
                                      precision, k=k, dz=dzs_ref[n] if norm else None, dden=_col(dd_ref, n, C))
        dk_ref[rows, :] = dk.astype(dk_ref.dtype)
        if gate:
            rows_ref[rows] = pairs.reshape(C)
        return dS

    jax.lax.fori_loop(0, N, body, dS)


def _dv_kernel(*refs, C, N, has_decay, gate, has_dsT, want_ds0, norm, precision):
    q_ref, k_ref, do_ref, v_ref, h_ref, b_ref, dsT_ref, dd_ref, dv_ref, rows_ref, ds0_ref = _unpack(
        refs, (1, 1, 1, gate, gate, has_decay, has_dsT, norm and gate, 1, gate, want_ds0))
    dS = dsT_ref[...] if has_dsT else jnp.zeros((q_ref.shape[-1], do_ref.shape[-1]), F32)
    first = pl.program_id(0) == 0   # the ones column's in-chunk pairs are counted by one feature block

    def body(i, dS):
        n = N - 1 - i
        rows = pl.ds(n * C, C)
        v, h = (v_ref[rows, :], h_ref[n]) if gate else (None, None)
        dd = None if dd_ref is None else jnp.where(first, _col(dd_ref, n, C), 0.0)
        dv, dS, pairs = chunk_math.dv(q_ref[rows, :], k_ref[rows, :], do_ref[rows, :], dS, _decay(b_ref, n, C),
                                     precision, v=v, S_prev=h, dden=dd)
        dv_ref[rows, :] = dv.astype(dv_ref.dtype)
        if gate:
            rows_ref[rows] = pairs.reshape(C)
        return dS

    dS = jax.lax.fori_loop(0, N, body, dS)
    if want_ds0:
        ds0_ref[...] = dS


# ---- BlockSpecs over [B, T, H, D] activations, [B, H, T] decays, [B, H, Dk, Dv] states; grid (blk, B, H).

def _seq(T, D):
    return pl.BlockSpec((None, T, None, D), lambda j, b, h: (b, 0, h, j))


def _seq_full(T, D):
    return pl.BlockSpec((None, T, None, D), lambda j, b, h: (b, 0, h, 0))


def _rows(T):
    return pl.BlockSpec((None, None, T), lambda j, b, h: (b, h, 0))


def _state(Dk, Dv, split):
    if split == "k":
        return pl.BlockSpec((None, None, Dk, Dv), lambda j, b, h: (b, h, j, 0))
    return pl.BlockSpec((None, None, Dk, Dv), lambda j, b, h: (b, h, 0, j))


def _states(N, Dk, Dv, split):
    """Per-chunk states [B, H, N, Dk, Dv], a Dk ('k') or Dv ('v') block of all chunks."""
    if split == "k":
        return pl.BlockSpec((None, None, N, Dk, Dv), lambda j, b, h: (b, h, 0, j, 0))
    return pl.BlockSpec((None, None, N, Dk, Dv), lambda j, b, h: (b, h, 0, 0, j))


def _chunk_key_sums(N, D, split):
    """Per-chunk key sums or their gradients [B, H, N, 1, Dk]: all of Dk (split None) or the program's Dk
    block ('k')."""
    if split == "k":
        return pl.BlockSpec((None, None, N, 1, D), lambda j, b, h: (b, h, 0, 0, j))
    return pl.BlockSpec((None, None, N, 1, D), lambda j, b, h: (b, h, 0, 0, 0))


def _rowsums(T):
    return pl.BlockSpec((None, None, None, T), lambda j, b, h: (j, b, h, 0))


def _call(kernel, grid, in_specs, out_specs, out_shape, cfg, name, d_max, one_stage=False):
    """d_max: the larger padded head dim, which sets the default num_warps; one_stage: num_stages's."""
    num_warps = gpu_num_warps(cfg, d_max)
    return pl.pallas_call(kernel, grid=grid, in_specs=in_specs, out_specs=out_specs, out_shape=out_shape,
                          compiler_params=compiler_params(num_warps, gpu_num_stages(cfg, one_stage)),
                          interpret=bool(cfg.interpret), name=name)


def _present(*pairs):
    """Keep (spec, operand) pairs whose operand is not None."""
    kept = [(s, x) for s, x in pairs if x is not None]
    return [s for s, _ in kept], [x for _, x in kept]


def forward(q, k, v, b, s0, cfg, want_state: bool, zs=None):
    """q, k: [B, T, H, Dk]; v: [B, T, H, Dv]; b: [B, H, T] or None; s0: [B, H, Dk, Dv] f32 or None;
    zs (normalize): [B, H, N, 1, Dk] in q's dtype, the key sum entering each chunk, else None
    -> (o, S_T or None, den [B, H, T] or None)."""
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    Dmax = max(Dk, Dv)
    BV = _block(Dv, cfg.block_v, B * H, cfg.auto_split, Dk)
    NV, C = Dv // BV, cfg.chunk_size
    norm = zs is not None
    kernel = functools.partial(_fwd_kernel, C=C, N=T // C, has_decay=b is not None, has_s0=s0 is not None,
                               want_state=want_state, norm=norm, precision=cfg.precision(q.dtype))
    in_specs, args = _present((_seq_full(T, Dk), q), (_seq_full(T, Dk), k), (_seq(T, BV), v),
                              (_rows(T), b), (_state(Dk, BV, "v"), s0), (_chunk_key_sums(T // C, Dk, None), zs))
    out_specs = [_seq(T, BV)]
    out_shape = [jax.ShapeDtypeStruct(v.shape, v.dtype)]
    if want_state:
        out_specs.append(_state(Dk, BV, "v"))
        out_shape.append(jax.ShapeDtypeStruct((B, H, Dk, Dv), F32))
    if norm:  # every feature block computes den; each writes its own copy (no block shared by programs)
        out_specs.append(_rowsums(T))
        out_shape.append(jax.ShapeDtypeStruct((NV, B, H, T), F32))
    out = _call(kernel, (NV, B, H), in_specs, out_specs, out_shape, cfg, "linear_attention_fwd", Dmax,
                norm and b is not None)(*args)
    o, rest = out[0], list(out[1:])
    sT = rest.pop(0) if want_state else None
    den = rest.pop(0)[0] if norm else None
    return o, sT, den


def backward(q, k, v, b, s0, do, dsT, cfg, gate_grad: bool = True, norm=None):
    """-> (dq, dk, dv, ds0 or None, pair sums or None). The pair sums (rows_q, rows_k, rows_v, each
    [B, H, T]) hold, for each step r, the pair terms straddling r that chunk_math's kernels emit, less the
    two in-chunk partial sums and the normaliser's spanning pairs (both added in pallas.py). norm:
    chunk_math.Norm (normalize; do is then v's cotangent do / (den + eps))."""
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    Dmax = max(Dk, Dv)
    C = cfg.chunk_size
    N = T // C
    BK = _block(Dk, cfg.block_k, B * H, cfg.auto_split, Dv)
    # The gated dv sweep with state in and out also holds the entering state and dS_T/dS_0 tiles: half-width
    # Dv blocks at Dk 128 (docs/kernels.md).
    heavy_dv = gate_grad and b is not None and (s0 is not None or dsT is not None)
    BV = _block(Dv, cfg.block_v, B * H, cfg.auto_split, Dk * (2 if heavy_dv else 1))
    NK, NV = Dk // BK, Dv // BV
    has_decay = b is not None
    gate = has_decay and gate_grad
    nm = norm is not None
    dden, zs, dzs = norm if nm else (None, None, None)
    common = dict(C=C, N=N, has_decay=has_decay, gate=gate, norm=nm, precision=cfg.precision(q.dtype))
    gated = (lambda x: x) if gate else (lambda x: None)

    kernel = functools.partial(_dq_kernel, has_s0=s0 is not None, **common)
    in_specs, args = _present((_seq(T, BK), k), (_seq_full(T, Dv), v), (_seq_full(T, Dv), do),
                              (_seq(T, BK), gated(q)), (_rows(T), b), (_state(BK, Dv, "k"), s0),
                              (_rows(T), dden), (_chunk_key_sums(N, BK, "k"), zs))
    out_specs, out_shape = [_seq(T, BK)], [jax.ShapeDtypeStruct(q.shape, q.dtype)]
    if gate:
        out_specs += [_rowsums(T), _states(N, BK, Dv, "k")]
        out_shape += [jax.ShapeDtypeStruct((NK, B, H, T), F32), jax.ShapeDtypeStruct((B, H, N, Dk, Dv), q.dtype)]
    res = _call(kernel, (NK, B, H), in_specs, out_specs, out_shape, cfg, "linear_attention_dq", Dmax, nm)(*args)
    dq_, rest = res[0], list(res[1:])
    rows_q, h = (rest.pop(0), rest.pop(0)) if gate else (None, None)

    want_ds0 = s0 is not None
    kernel = functools.partial(_dk_kernel, has_dsT=dsT is not None, **common)
    in_specs, args = _present((_seq(T, BK), q), (_seq_full(T, Dv), v), (_seq_full(T, Dv), do),
                              (_seq(T, BK), gated(k)), (_rows(T), b), (_state(BK, Dv, "k"), dsT),
                              (_rows(T), dden), (_chunk_key_sums(N, BK, "k"), dzs))
    out_specs, out_shape = [_seq(T, BK)], [jax.ShapeDtypeStruct(k.shape, k.dtype)]
    if gate:
        out_specs.append(_rowsums(T))
        out_shape.append(jax.ShapeDtypeStruct((NK, B, H, T), F32))
    res = _call(kernel, (NK, B, H), in_specs, out_specs, out_shape, cfg, "linear_attention_dk", Dmax)(*args)
    dk_ = res[0]
    rows_k = res[1] if gate else None

    kernel = functools.partial(_dv_kernel, has_dsT=dsT is not None, want_ds0=want_ds0, **common)
    in_specs, args = _present((_seq_full(T, Dk), q), (_seq_full(T, Dk), k), (_seq(T, BV), do),
                              (_seq(T, BV), gated(v)), (_states(N, Dk, BV, "v"), h), (_rows(T), b),
                              (_state(Dk, BV, "v"), dsT), (_rows(T), gated(dden)))
    out_specs, out_shape = [_seq(T, BV)], [jax.ShapeDtypeStruct(v.shape, v.dtype)]
    if gate:
        out_specs.append(_rowsums(T))
        out_shape.append(jax.ShapeDtypeStruct((NV, B, H, T), F32))
    if want_ds0:
        out_specs.append(_state(Dk, BV, "v"))
        out_shape.append(jax.ShapeDtypeStruct((B, H, Dk, Dv), F32))
    res = _call(kernel, (NV, B, H), in_specs, out_specs, out_shape, cfg, "linear_attention_dv", Dmax,
                nm and gate)(*args)
    dv_, rest = res[0], list(res[1:])
    rows_v = rest.pop(0) if gate else None
    ds0 = rest.pop(0) if want_ds0 else None

    pair_sums = None if not gate else (rows_q.sum(0), rows_k.sum(0), rows_v.sum(0))
    return dq_, dk_, dv_, ds0, pair_sums
