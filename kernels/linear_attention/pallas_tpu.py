"""Pallas TPU kernels (Mosaic) for chunked causal linear attention, forward and backward.

Same three-sweep backward and tile algebra (chunk_math) as the GPU kernels; what differs is the TPU
idiom: the sequence axis is the last grid axis, marked "arbitrary" (sequential); each grid step DMAs
S consecutive [C, D] chunks (double-buffered by the pipeline) and loops over them in-kernel, and the
float32 state tile lives in a VMEM scratch buffer that persists across the steps of one (batch, head,
feature block). S chunks per step (KernelConfig.chunks_per_step, the largest divisor of the chunk count
up to it) keep the grid small, as each grid step pays the pipeline's overhead (docs/kernels.md).

Layout: [B, T, H, D] activations are viewed as [B, N, C, H*D] (a free reshape), so an (S, C, D) block
at column index h*(D//BD)+j is head h's feature block j for S chunks: last two block dims (C, 128k)
meet the (8, 128) tiling with no transpose, and the in-kernel loop indexes the untiled leading dim.
D must be a multiple of 128 (the caller pads). The chunk-local cumulative decay b arrives as both rows
[.., 1, C] and columns [.., C, 1] so no in-kernel transpose is needed.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

from . import chunk_math

F32 = jnp.float32


def compiler_params():
    sem = ("parallel", "parallel", "parallel", "arbitrary")
    cls = getattr(pltpu, "CompilerParams", None) or getattr(pltpu, "TPUCompilerParams")
    return cls(dimension_semantics=sem)


def _interpret(flag):
    """True: Pallas' generic interpreter (fast); "tpu": its TPU interpreter, which simulates VMEM, DMAs
    and grid semantics (slower). Both poison fresh buffers with NaN."""
    if flag == "tpu":
        return pltpu.InterpretParams(uninitialized_memory="nan")
    return bool(flag)


def _unpack(refs, flags):
    it = iter(refs)
    return [next(it) if f else None for f in flags]


def _decay(bc_ref, br_ref, C, i):
    if bc_ref is None:
        return chunk_math.decay(C)
    b_row = br_ref[i]
    return chunk_math.decay(C, bc_ref[i], b_row, b_row[:, C - 1:C])


def _init(S_ref, src_ref):
    @pl.when(pl.program_id(3) == 0)
    def _():
        S_ref[...] = jnp.zeros(S_ref.shape, F32) if src_ref is None else src_ref[...]


def _finish(S, dst_ref, NB):
    if dst_ref is not None:
        @pl.when(pl.program_id(3) == NB - 1)
        def _():
            dst_ref[...] = S


def _sweep(S_ref, S, body, rev):
    """Run St = body(i, St) over the step's S chunks (last to first when rev); the state (or its
    gradient) St persists across steps in the VMEM scratch S_ref."""
    St = jax.lax.fori_loop(0, S, lambda i, c: body(S - 1 - i if rev else i, c), S_ref[...])
    S_ref[...] = St
    return St


def _fwd_kernel(*refs, C, S, NB, has_decay, has_s0, want_state, norm, precision):
    (q_ref, k_ref, v_ref, bc_ref, br_ref, s0_ref, zs_ref, o_ref, sT_ref, den_ref, S_ref) = _unpack(
        refs, (1, 1, 1, has_decay, has_decay, has_s0, norm, 1, want_state, norm, 1))
    _init(S_ref, s0_ref)

    def body(i, St):
        def store_den(den):
            den_ref[i] = den

        o, St = chunk_math.fwd(q_ref[i], k_ref[i], v_ref[i], St, _decay(bc_ref, br_ref, C, i),
                               precision, z=zs_ref[i] if norm else None, store_den=store_den)
        o_ref[i] = o.astype(o_ref.dtype)
        return St

    _finish(_sweep(S_ref, S, body, False), sT_ref, NB)


def _dq_kernel(*refs, C, S, NB, has_decay, gate, has_s0, norm, precision):
    (k_ref, v_ref, do_ref, q_ref, bc_ref, br_ref, s0_ref, dd_ref, zs_ref, dq_ref, rows_ref, h_ref,
     S_ref) = _unpack(refs, (1, 1, 1, gate, has_decay, has_decay, has_s0, norm, norm, 1, gate, gate, 1))
    _init(S_ref, s0_ref)

    def body(i, St):
        if gate:  # the dv sweep needs the state entering each chunk for the decay gradient
            h_ref[i] = St.astype(h_ref.dtype)
        q = q_ref[i] if gate else None
        dd = None if dd_ref is None else dd_ref[i]
        z = zs_ref[i] if norm else None
        dq, St, pairs = chunk_math.dq(k_ref[i], v_ref[i], do_ref[i], St, _decay(bc_ref, br_ref, C, i),
                                      precision, q=q, z=z, dden=dd)
        dq_ref[i] = dq.astype(dq_ref.dtype)
        if gate:
            rows_ref[i] = pairs
        return St

    _sweep(S_ref, S, body, False)


def _dk_kernel(*refs, C, S, NB, has_decay, gate, has_dsT, norm, precision):
    (q_ref, v_ref, do_ref, k_ref, bc_ref, br_ref, dsT_ref, dd_ref, dzs_ref, dk_ref, rows_ref, S_ref) = _unpack(
        refs, (1, 1, 1, gate, has_decay, has_decay, has_dsT, norm, norm, 1, gate, 1))
    _init(S_ref, dsT_ref)

    def body(i, St):
        k = k_ref[i] if gate else None
        dd = None if dd_ref is None else dd_ref[i]
        dk, dS, pairs = chunk_math.dk(q_ref[i], v_ref[i], do_ref[i], St, _decay(bc_ref, br_ref, C, i),
                                      precision, k=k, dz=dzs_ref[i] if norm else None, dden=dd)
        dk_ref[i] = dk.astype(dk_ref.dtype)
        if gate:
            rows_ref[i] = pairs
        return dS

    _sweep(S_ref, S, body, True)


def _dv_kernel(*refs, C, S, NB, has_decay, gate, has_dsT, want_ds0, norm, precision):
    (q_ref, k_ref, do_ref, v_ref, h_ref, bc_ref, br_ref, dsT_ref, dd_ref, dv_ref, rows_ref, ds0_ref,
     S_ref) = _unpack(refs, (1, 1, 1, gate, gate, has_decay, has_decay, has_dsT, norm and gate, 1, gate, want_ds0, 1))
    _init(S_ref, dsT_ref)
    first = pl.program_id(2) == 0   # the ones column's in-chunk pairs are counted by one feature block

    def body(i, St):
        v, h = (v_ref[i], h_ref[i]) if gate else (None, None)
        dd = None if dd_ref is None else jnp.where(first, dd_ref[i], 0.0)
        dv, dS, pairs = chunk_math.dv(q_ref[i], k_ref[i], do_ref[i], St, _decay(bc_ref, br_ref, C, i),
                                      precision, v=v, S_prev=h, dden=dd)
        dv_ref[i] = dv.astype(dv_ref.dtype)
        if gate:
            rows_ref[i] = pairs
        return dS

    _finish(_sweep(S_ref, S, body, True), ds0_ref, NB)


# ---- BlockSpecs; grid (B, H, feature block j, step n), S chunks per step. `rev` walks the steps last to first.

def _step(n, NB, rev):
    return NB - 1 - n if rev else n


def _act(S, C, D, BD, NB, rev=False):
    """Activation [B, N, C, H*D] -> (S, C, BD) block of step n, head h, feature block j."""
    per_head = D // BD
    return pl.BlockSpec((None, S, C, BD), lambda b, h, j, n: (b, _step(n, NB, rev), 0, h * per_head + j))


def _act_full(S, C, D, NB, rev=False):
    return pl.BlockSpec((None, S, C, D), lambda b, h, j, n: (b, _step(n, NB, rev), 0, h))


def _decay_specs(S, C, NB, rev=False):
    col = pl.BlockSpec((None, None, S, C, 1), lambda b, h, j, n: (b, h, _step(n, NB, rev), 0, 0))
    row = pl.BlockSpec((None, None, S, 1, C), lambda b, h, j, n: (b, h, _step(n, NB, rev), 0, 0))
    return col, row


def _state(Dk, Dv, split):
    if split == "k":
        return pl.BlockSpec((None, None, Dk, Dv), lambda b, h, j, n: (b, h, j, 0))
    return pl.BlockSpec((None, None, Dk, Dv), lambda b, h, j, n: (b, h, 0, j))


def _states(S, NB, Dk, Dv, split, rev=False):
    """Per-chunk states [B, H, N, Dk, Dv]: step n's S chunks, a Dk ('k') or Dv ('v') block."""
    if split == "k":
        return pl.BlockSpec((None, None, S, Dk, Dv), lambda b, h, j, n: (b, h, _step(n, NB, rev), j, 0))
    return pl.BlockSpec((None, None, S, Dk, Dv), lambda b, h, j, n: (b, h, _step(n, NB, rev), 0, j))


def _chunk_key_sums(S, NB, D, split, rev=False):
    """Per-chunk key sums or their gradients [B, H, N, 1, Dk]: step n's S chunks, all of Dk (split None) or
    the program's Dk block ('k')."""
    if split == "k":
        return pl.BlockSpec((None, None, S, 1, D), lambda b, h, j, n: (b, h, _step(n, NB, rev), 0, j))
    return pl.BlockSpec((None, None, S, 1, D), lambda b, h, j, n: (b, h, _step(n, NB, rev), 0, 0))


def _rowsums(S, C, NB, rev=False):
    return pl.BlockSpec((None, None, None, S, C, 1), lambda b, h, j, n: (j, b, h, _step(n, NB, rev), 0, 0))


def steps_per_chunk_group(N: int, most: int) -> int:
    """Chunks per grid step: the largest divisor of N not above `most` (T stays padded to one chunk)."""
    return max(d for d in range(1, min(N, most) + 1) if N % d == 0)


def _present(*pairs):
    kept = [(s, x) for s, x in pairs if x is not None]
    return [s for s, _ in kept], [x for _, x in kept]


def _flat(x, C):
    B, T, H, D = x.shape
    return x.reshape(B, T // C, C, H * D)


def _decay_views(b, C):
    if b is None:
        return None, None
    B, H, T = b.shape
    b = b.reshape(B, H, T // C, C)
    return b[..., :, None], b[..., None, :]


def _call(kernel, grid, in_specs, out_specs, out_shape, scratch, cfg, name):
    """scratch: the float32 VMEM carry's shape (the state or its gradient)."""
    return pl.pallas_call(kernel, grid=grid, in_specs=in_specs, out_specs=out_specs, out_shape=out_shape,
                          scratch_shapes=[pltpu.VMEM(x, F32) for x in scratch], compiler_params=compiler_params(),
                          interpret=_interpret(cfg.interpret), name=name)


def forward(q, k, v, b, s0, cfg, want_state: bool, zs=None):
    """Same contract as pallas_gpu.forward (D multiples of 128 here)."""
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    C = cfg.chunk_size
    N = T // C
    S = steps_per_chunk_group(N, cfg.chunks_per_step)
    NB = N // S
    BV = min(cfg.block_v, Dv)
    NV = Dv // BV
    norm = zs is not None
    bc, br = _decay_views(b, C)
    col, row = _decay_specs(S, C, NB)
    kernel = functools.partial(_fwd_kernel, C=C, S=S, NB=NB, has_decay=b is not None, has_s0=s0 is not None,
                               want_state=want_state, norm=norm, precision=cfg.precision(q.dtype))
    in_specs, args = _present((_act_full(S, C, Dk, NB), _flat(q, C)), (_act_full(S, C, Dk, NB), _flat(k, C)),
                              (_act(S, C, Dv, BV, NB), _flat(v, C)), (col, bc), (row, br), (_state(Dk, BV, "v"), s0),
                              (_chunk_key_sums(S, NB, Dk, None), zs))
    out_specs = [_act(S, C, Dv, BV, NB)]
    out_shape = [jax.ShapeDtypeStruct((B, N, C, H * Dv), v.dtype)]
    if want_state:
        out_specs.append(_state(Dk, BV, "v"))
        out_shape.append(jax.ShapeDtypeStruct((B, H, Dk, Dv), F32))
    if norm:  # every feature block computes den; each writes its own copy (no block shared by programs)
        out_specs.append(_rowsums(S, C, NB))
        out_shape.append(jax.ShapeDtypeStruct((NV, B, H, N, C, 1), F32))
    out = _call(kernel, (B, H, NV, NB), in_specs, out_specs, out_shape, [(Dk, BV)], cfg,
                "linear_attention_fwd")(*args)
    o, rest = out[0].reshape(v.shape), list(out[1:])
    sT = rest.pop(0) if want_state else None
    den = rest.pop(0)[0].reshape(B, H, T) if norm else None
    return o, sT, den


def backward(q, k, v, b, s0, do, dsT, cfg, gate_grad: bool = True, norm=None):
    """Same contract as pallas_gpu.backward."""
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    C = cfg.chunk_size
    N = T // C
    S = steps_per_chunk_group(N, cfg.chunks_per_step)
    NB = N // S
    BK, BV = min(cfg.block_k, Dk), min(cfg.block_v, Dv)
    NK, NV = Dk // BK, Dv // BV
    has_decay = b is not None
    gate = has_decay and gate_grad
    gated = (lambda x: x) if gate else (lambda x: None)
    nm = norm is not None
    dden, zs, dzs = norm if nm else (None, None, None)
    ddc = _decay_views(dden, C)[0]
    bc, br = _decay_views(b, C)
    qf, kf, vf, dof = (_flat(x, C) for x in (q, k, v, do))
    common = dict(C=C, S=S, NB=NB, has_decay=has_decay, gate=gate, norm=nm, precision=cfg.precision(q.dtype))

    col, row = _decay_specs(S, C, NB)
    kernel = functools.partial(_dq_kernel, has_s0=s0 is not None, **common)
    in_specs, args = _present((_act(S, C, Dk, BK, NB), kf), (_act_full(S, C, Dv, NB), vf),
                              (_act_full(S, C, Dv, NB), dof), (_act(S, C, Dk, BK, NB), gated(qf)), (col, bc),
                              (row, br), (_state(BK, Dv, "k"), s0), (col, ddc), (_chunk_key_sums(S, NB, BK, "k"), zs))
    out_specs, out_shape = [_act(S, C, Dk, BK, NB)], [jax.ShapeDtypeStruct(qf.shape, q.dtype)]
    if gate:
        out_specs += [_rowsums(S, C, NB), _states(S, NB, BK, Dv, "k")]
        out_shape += [jax.ShapeDtypeStruct((NK, B, H, N, C, 1), F32),
                      jax.ShapeDtypeStruct((B, H, N, Dk, Dv), q.dtype)]
    res = _call(kernel, (B, H, NK, NB), in_specs, out_specs, out_shape, [(BK, Dv)], cfg, "linear_attention_dq")(*args)
    dq_, rest = res[0].reshape(q.shape), list(res[1:])
    rows_q, h = (rest.pop(0), rest.pop(0)) if gate else (None, None)

    want_ds0 = s0 is not None
    col, row = _decay_specs(S, C, NB, rev=True)
    kernel = functools.partial(_dk_kernel, has_dsT=dsT is not None, **common)
    in_specs, args = _present((_act(S, C, Dk, BK, NB, True), qf), (_act_full(S, C, Dv, NB, True), vf),
                              (_act_full(S, C, Dv, NB, True), dof), (_act(S, C, Dk, BK, NB, True), gated(kf)),
                              (col, bc), (row, br), (_state(BK, Dv, "k"), dsT), (col, ddc),
                              (_chunk_key_sums(S, NB, BK, "k", True), dzs))
    out_specs, out_shape = [_act(S, C, Dk, BK, NB, True)], [jax.ShapeDtypeStruct(kf.shape, k.dtype)]
    if gate:
        out_specs.append(_rowsums(S, C, NB, True))
        out_shape.append(jax.ShapeDtypeStruct((NK, B, H, N, C, 1), F32))
    res = _call(kernel, (B, H, NK, NB), in_specs, out_specs, out_shape, [(BK, Dv)], cfg, "linear_attention_dk")(*args)
    dk_ = res[0].reshape(k.shape)
    rows_k = res[1] if gate else None

    kernel = functools.partial(_dv_kernel, has_dsT=dsT is not None, want_ds0=want_ds0, **common)
    in_specs, args = _present((_act_full(S, C, Dk, NB, True), qf), (_act_full(S, C, Dk, NB, True), kf),
                              (_act(S, C, Dv, BV, NB, True), dof), (_act(S, C, Dv, BV, NB, True), gated(vf)),
                              (_states(S, NB, Dk, BV, "v", True), h), (col, bc), (row, br),
                              (_state(Dk, BV, "v"), dsT), (col, gated(ddc)))
    out_specs, out_shape = [_act(S, C, Dv, BV, NB, True)], [jax.ShapeDtypeStruct(vf.shape, v.dtype)]
    if gate:
        out_specs.append(_rowsums(S, C, NB, True))
        out_shape.append(jax.ShapeDtypeStruct((NV, B, H, N, C, 1), F32))
    if want_ds0:
        out_specs.append(_state(Dk, BV, "v"))
        out_shape.append(jax.ShapeDtypeStruct((B, H, Dk, Dv), F32))
    res = _call(kernel, (B, H, NV, NB), in_specs, out_specs, out_shape, [(Dk, BV)], cfg,
                "linear_attention_dv")(*args)
    dv_, rest = res[0].reshape(v.shape), list(res[1:])
    rows_v = rest.pop(0) if gate else None
    ds0 = rest.pop(0) if want_ds0 else None

    pair_sums = None
    if gate:
        pair_sums = tuple(r.sum(0).reshape(B, H, T) for r in (rows_q, rows_k, rows_v))
    return dq_, dk_, dv_, ds0, pair_sums
