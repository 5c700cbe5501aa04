"""The Pallas causal core as one differentiable op: padding, the custom VJP, and the GPU/TPU choice.

This is the one place that picks the kernel family (`_backend`) and its tile sizes (`KernelConfig`);
the kernel files only build pallas_calls. The VJP calls the backward kernels for dq, dk, dv and dS_0
and assembles the decay gradient from row sums they emit. With G_t = sum_{r<=t} g_r, as every term of
the output depends on g only through the pair weights exp(G_t - G_s), dL/dg_r is a sum over the pairs
(s < r <= t) straddling step r; the kernels emit its pieces (see chunk_math) and `_gate_grad` adds them.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from . import key_sums
from .chunk_math import LOG2E, NORMALIZE_EPS, Norm
from .common import chunk_local_cumsum, matmul_precision, next_pow2, pad_axis, round_up


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    """Static kernel parameters. backend: 'gpu' (Triton) | 'tpu' (Mosaic). Tile sizes are upper bounds
    (clipped to the padded head dims); num_warps, num_stages and auto_split only matter on GPU.

    num_warps=None picks 8 when a padded head dim is >= 128, else 4 (chosen by compile statistics from
    `python -m kernels.aot`: docs/kernels.md). `python -m kernels.bench --tune` times the choices on a device."""

    backend: str = "gpu"
    chunk_size: int = 64
    block_k: int = 64
    block_v: int = 64
    num_warps: int | None = None    # GPU: None = by head dim (see above)
    num_stages: int | None = None   # GPU: None = 2, or 1 in some normalized kernels (gpu_num_stages)
    auto_split: bool = True          # GPU: narrow the feature blocks when (B, H) alone cannot fill the SMs
    chunks_per_step: int = 8         # TPU: chunks per grid step (B8 T4096 H16 D128 at chunk 64: 1024 steps)
    interpret: bool | str = False     # True: generic interpreter; "tpu": the TPU interpreter (TPU kernels)

    def precision(self, dtype):
        return matmul_precision(dtype)

    def pad_head_dim(self, d: int) -> int:
        # Triton tiles are powers of two and dots need >= 16; Mosaic wants the 128-lane layout.
        return next_pow2(d, 16) if self.backend == "gpu" else round_up(d, 128)


def default_config(backend: str, chunk_size: int = 64, interpret: bool | str = False) -> KernelConfig:
    if backend == "tpu":
        return KernelConfig("tpu", chunk_size, block_k=128, block_v=128, interpret=interpret)
    if backend == "gpu":
        return KernelConfig("gpu", chunk_size, interpret=interpret)
    raise ValueError(f"unknown Pallas backend {backend!r}; expected 'gpu' or 'tpu'")


def _backend(cfg: KernelConfig):
    # Imported lazily so that neither family's lowering-specific imports are needed by the other.
    if cfg.backend == "gpu":
        from . import pallas_gpu
        return pallas_gpu
    from . import pallas_tpu
    return pallas_tpu


def _pad(q, k, v, g, s0, cfg):
    """Pad T to a chunk multiple (g = 0 there: padded steps leave the state alone) and head dims."""
    T, Dk, Dv = q.shape[1], q.shape[-1], v.shape[-1]
    Tp, Dkp, Dvp = round_up(T, cfg.chunk_size), cfg.pad_head_dim(Dk), cfg.pad_head_dim(Dv)
    q, k = (pad_axis(pad_axis(x, 1, Tp), 3, Dkp) for x in (q, k))
    v = pad_axis(pad_axis(v, 1, Tp), 3, Dvp)
    b = None
    if g is not None:
        # Prescaled by log2(e): the kernels take exp2 (one MUFU op on GPU) instead of an accurate exp.
        b = chunk_local_cumsum(pad_axis(g, 1, Tp) * LOG2E, cfg.chunk_size).transpose(0, 2, 1)  # [B, H, Tp]
    if s0 is not None:
        s0 = pad_axis(pad_axis(s0.astype(jnp.float32), 2, Dkp), 3, Dvp)
    return q, k, v, b, s0


def _split_state(s, Dv, Dkp):
    """[B, H, Dk, Dv + 1] (normalize: z is the last column) -> (S [B, H, Dk, Dv], z [B, H, 1, Dk] padded)."""
    if s is None:
        return None, None
    z = pad_axis(s[..., Dv].astype(jnp.float32), 2, Dkp)[:, :, None, :]
    return s[..., :Dv], z


def causal_core(q, k, v, g, s0, cfg: KernelConfig, want_state: bool, normalize: bool = False):
    """q (pre-scaled), k: [B, T, H, Dk]; v: [B, T, H, Dv]; g: [B, T, H] float32 or None;
    s0: [B, H, Dk, Dv] or None -> (o: [B, T, H, Dv], S_T: [B, H, Dk, Dv] float32 or None).

    normalize: o = num / (den + eps) computed in the kernels from the key sum entering each chunk
    (key_sums), not from a ones column appended to v, which would double a power-of-two Dv; s0 and S_T
    then have Dv + 1 columns, the key sum last."""
    return _core(q, k, v, g, s0, cfg, want_state, normalize)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _core(q, k, v, g, s0, cfg, want_state, normalize):
    return _fwd(q, k, v, g, s0, cfg, want_state, normalize)[0]


def _fwd_rule(q, k, v, g, s0, cfg, want_state, normalize):
    """symbolic_zeros: the primals come wrapped with a `perturbed` bit, so a decay that needs no gradient
    (a constant retention decay, say) skips the decay-gradient work in the backward kernels."""
    unwrap = functools.partial(jax.tree.map, lambda p: p.value)
    out, res = _fwd(*(unwrap(x) for x in (q, k, v, g, s0)), cfg, want_state, normalize)
    gate_grad = g is not None and g.perturbed
    return out, res + (() if gate_grad else None,)  # a static flag carried as residual structure


def _fwd(q, k, v, g, s0, cfg, want_state, normalize):
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    S0, z0 = _split_state(s0, Dv, cfg.pad_head_dim(Dk)) if normalize else (s0, None)
    qp, kp, vp, b, s0p = _pad(q, k, v, g, S0, cfg)
    zs, zT = key_sums.entering(kp, b, z0, cfg.chunk_size, qp.dtype) if normalize else (None, None)
    o, sT, den = _backend(cfg).forward(qp, kp, vp, b, s0p, cfg, want_state, zs)
    o = o[:, :T, :, :Dv]
    if sT is not None:
        sT = sT[:, :, :Dk, :Dv]
        if normalize:
            sT = jnp.concatenate([sT, zT[:, :, 0, :Dk, None]], axis=-1)
    # normalize: the backward needs o and den (as flash attention keeps o and the log-sum-exp), and the key
    # sum entering each chunk (T / chunk x Dk floats per head)
    extra = (o, den, zs) if normalize else ()
    return (o, sT), (q, k, v, g, s0) + extra


def _bwd_rule(cfg, want_state, normalize, res, cts):
    q, k, v, g, s0 = res[:5]
    gate_flag = res[-1]
    do, dsT = cts
    if isinstance(do, SymbolicZero):
        do = jnp.zeros(do.shape, do.dtype)
    if isinstance(dsT, SymbolicZero):  # the final state is not used: no state gradient enters the sweeps
        dsT = None
    gate_grad = g is not None and gate_flag is not None
    T, Dk, Dv = q.shape[1], q.shape[-1], v.shape[-1]
    Dkp = cfg.pad_head_dim(Dk)
    norm, zs, dzs = None, None, None
    S0 = s0
    if normalize:
        o, den, zs = res[5:8]
        r = 1.0 / (den[:, :, :T].transpose(0, 2, 1) + NORMALIZE_EPS)                 # [B, T, H]
        do32 = do.astype(jnp.float32)
        dden = -jnp.sum(do32 * o.astype(jnp.float32), axis=-1) * r                 # the ones column's cotangent
        do = do32 * r[..., None]                                                     # v's
        S0 = _split_state(s0, Dv, Dkp)[0]
        dsT, dzT = _split_state(dsT, Dv, Dkp)
        dden = pad_axis(dden, 1, round_up(T, cfg.chunk_size)).transpose(0, 2, 1)      # [B, H, Tp]
    qp, kp, vp, b, s0p = _pad(q, k, v, g, S0, cfg)
    if normalize:
        dzs, dz0 = key_sums.leaving_grads(qp, dden, b, dzT, cfg.chunk_size)
        norm = Norm(dden, zs, dzs.astype(qp.dtype))
    dop = pad_axis(pad_axis(do.astype(v.dtype), 1, qp.shape[1]), 3, vp.shape[-1])
    dsTp = None
    if dsT is not None:
        dsTp = pad_axis(pad_axis(dsT.astype(jnp.float32), 2, qp.shape[-1]), 3, vp.shape[-1])
    dq, dk, dv, ds0, pair_sums = _backend(cfg).backward(qp, kp, vp, b, s0p, dop, dsTp, cfg, gate_grad, norm)
    dq, dk, dv = dq[:, :T, :, :Dk], dk[:, :T, :, :Dk], dv[:, :T, :, :Dv]
    if ds0 is not None:
        ds0 = ds0[:, :, :Dk, :Dv]
        if normalize:
            ds0 = jnp.concatenate([ds0, dz0[:, :, 0, :Dk, None]], axis=-1)
        ds0 = ds0.astype(s0.dtype)
    dg = None
    if gate_grad:
        dg = _gate_grad(*pair_sums, zs, dzs, b, cfg.chunk_size)[:, :, :T].transpose(0, 2, 1).astype(g.dtype)
    return dq, dk, dv, dg, ds0


def _gate_grad(rows_q, rows_k, rows_v, zs, dzs, b, C):
    """dL/dg_r from the kernels' pair sums ([B, H, T] each): rows_v already holds the pairs inside r's
    chunk and those spanning it; pairs entering from earlier chunks count for steps t >= r of the chunk
    (rows_q at t), pairs leaving to later chunks for steps s < r (rows_k at s). With normalize, zs and dzs
    (the key sums entering each chunk and the gradients of those leaving it) add the normaliser's pairs
    spanning each chunk."""
    B, H, T = rows_q.shape
    rq, rk = rows_q.reshape(B, H, T // C, C), rows_k.reshape(B, H, T // C, C)
    from_before = jax.lax.cumsum(rq, axis=3, reverse=True)
    to_after = jnp.cumsum(rk, axis=3) - rk
    if zs is not None:
        rows_v = rows_v + key_sums.span_rows(zs, dzs, b, C)
    return rows_v + (from_before + to_after).reshape(B, H, T)


_core.defvjp(_fwd_rule, _bwd_rule, symbolic_zeros=True)
