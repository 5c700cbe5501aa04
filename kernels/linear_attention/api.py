"""`linear_attention`: the public entry point. Validates, then builds every variant from one causal core.

    o = linear_attention(q, k, v)                                     # causal linear attention
    o = linear_attention(q, k, v, log_decay=jnp.log(gammas))          # retention: [H] fixed decay per head
    o = linear_attention(q, k, v, log_decay=jax.nn.log_sigmoid(a))    # GLA: [B, T, H] gate per head and step
    o, S = linear_attention(q[:, :t], ..., return_final_state=True)   # then pass initial_state=S on

How the variants reduce to the causal core (q pre-scaled; g: [B, T, H] or None; S_0) -> (o, S_T):
  - a fixed per-head decay is broadcast to [B, T, H] (its gradient is summed back by autodiff);
  - normalize: o = num / (q.z + eps), z the (decayed) running key sum, the state's last column. The Pallas
    kernels load z per chunk from key_sums (causal); XLA and the bidirectional form append a ones column to v;
  - non-causal without decay is q (K^T V); with decay it is a causal pass plus a causal pass over the
    reversed sequence (gates shifted by one) minus the diagonal, i.e. weights exp(-|G_t - G_s|).
"""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp

from . import reference, xla
from .common import matmul_precision, next_pow2, platform

IMPLS = ("auto", "reference", "xla", "pallas", "pallas_gpu", "pallas_tpu")
NORMALIZE_EPS = reference.NORMALIZE_EPS


def resolve_impl(impl: str, target: str | None = None) -> str:
    """'auto' -> the fastest for the target platform; 'pallas' -> the kernel family for it (GPU kernels
    interpreted on CPU). target: 'cuda' | 'rocm' | 'gpu' | 'tpu' | 'cpu'; default: the host's backend."""
    p = platform() if target is None else ("gpu" if target in ("cuda", "rocm", "gpu") else target)
    if impl == "auto":
        return {"gpu": "pallas_gpu", "tpu": "pallas_tpu"}.get(p, "xla")
    if impl == "pallas":
        return "pallas_tpu" if p == "tpu" else "pallas_gpu"
    return impl


def linear_attention(q, k, v, *, log_decay=None, normalize: bool = False, causal: bool = True,
                     initial_state=None, return_final_state: bool = False, chunk_size: int = 64,
                     impl: str = "auto", scale: float | None = None, interpret: bool | str | None = None):
    """Linear attention o_t = sum_s w_ts (q_t . k_s) v_s with w_ts = exp(G_t - G_s) [s <= t] (causal).

    Args:
      q, k: [B, T, H, Dk]; v: [B, T, H, Dv]. Computed in their common dtype, states in float32.
      log_decay: None (no decay), [H] (fixed per-head decay, retention) or [B, T, H] (data-dependent
        gate per head and step, GLA); log of the per-step multiplier, expected <= 0.
      normalize: divide by q_t . z_t, z the (decayed) running sum of keys (use positive feature maps).
      causal: False gives the bidirectional form with weights exp(-|G_t - G_s|).
      initial_state: [B, H, Dk, Dv] (Dv + 1 with normalize: the last column is z), causal only.
      return_final_state: also return S_T (same layout, float32), so that a sequence split in two
        and chained through the state gives the single call's result.
      chunk_size: chunk length C of the chunked algorithm, a power of two >= 16 (an upper bound: shorter
        sequences use the smallest power of two >= T).
      impl: 'auto' | 'reference' | 'xla' | 'pallas' | 'pallas_gpu' | 'pallas_tpu'. 'auto' and 'pallas'
        are decided per lowering platform (jax.lax.platform_dependent), not by the host: lowering or
        exporting for cuda/tpu from a CPU host gives the Triton/Mosaic kernels.
      scale: multiplies q; default Dk ** -0.5.
      interpret: run Pallas kernels in interpret mode (default: only when lowering for CPU); "tpu" selects
        Pallas' TPU interpreter for the TPU kernels (simulates TPU memory semantics, slower).

    Returns:
      o: [B, T, H, Dv] in the inputs' dtype, and S_T if return_final_state.
    """
    _validate(q, k, v, log_decay, causal, initial_state, return_final_state, chunk_size, impl, normalize, interpret)
    dtype = jnp.result_type(q, k, v)
    q, k, v = (x.astype(dtype) for x in (q, k, v))
    B, T, H, Dk = q.shape
    chunk_size = min(chunk_size, next_pow2(T, 16))  # short sequences: one chunk, padded no further than needed
    scale = Dk ** -0.5 if scale is None else scale
    state_dtype = jnp.float64 if dtype == jnp.float64 else jnp.float32
    g = None
    if log_decay is not None:
        g = jnp.broadcast_to(jnp.asarray(log_decay, state_dtype), (B, T, H))
    kw = dict(normalize=normalize, causal=causal, want_state=return_final_state, chunk_size=chunk_size,
              scale=scale)

    def run(impl, interp, q, k, v, g, s0):
        with jax.named_scope(f"linear_attention_{impl}"):
            return _run(impl, interp, q, k, v, g, s0, **kw)

    per_target = impl in ("auto", "pallas") or (impl.startswith("pallas_") and interpret is None)
    if not per_target or dtype == jnp.float64:  # float64: branches would differ (kernels keep float32 states)
        interp = platform() == "cpu" if interpret is None else interpret
        o, s = run(resolve_impl(impl), interp, q, k, v, g, initial_state)
    else:  # interpret mode only where the lowering platform is the CPU
        branches = {}  # one callable per distinct (impl, interpret): platform_dependent joins identical ones

        def branch(target):
            key = (resolve_impl(impl, target), (target == "cpu") if interpret is None else interpret)
            return branches.setdefault(key, functools.partial(run, *key))
        o, s = jax.lax.platform_dependent(q, k, v, g, initial_state, default=branch("cpu"),
                                          **{t: branch(t) for t in ("cuda", "rocm", "tpu")})
    chex.assert_shape(o, (B, T, H, v.shape[-1]))  # every implementation returns the documented layouts
    if return_final_state:
        chex.assert_shape(s, (B, H, Dk, v.shape[-1] + int(normalize)))
    return (o, s) if return_final_state else o


def _run(impl, interpret, q, k, v, g, s0, *, normalize, causal, want_state, chunk_size, scale):
    """One implementation, q unscaled -> (o, S_T or None)."""
    dtype = q.dtype
    if impl == "reference":
        o, s = reference.quadratic(q, k, v, g, scale=scale, causal=causal, normalize=normalize, initial_state=s0)
        return o.astype(dtype), (s if want_state else None)
    q = (q * scale).astype(dtype)
    core = _core_fn(impl, chunk_size, interpret)
    if normalize and causal and impl != "xla":  # the kernels load per-chunk key sums (key_sums)
        return core(q, k, v, g, s0, want_state, normalize=True)
    if normalize:
        v = jnp.concatenate([v, jnp.ones(v.shape[:-1] + (1,), dtype)], axis=-1)
    if causal:
        o, s = core(q, k, v, g, s0, want_state)
    else:
        o, s = _bidirectional(core, q, k, v, g), None
    if normalize:
        acc = jnp.promote_types(dtype, jnp.float32)
        o = (o[..., :-1].astype(acc) / (o[..., -1:].astype(acc) + NORMALIZE_EPS)).astype(dtype)
    return o, s


def _core_fn(impl, chunk_size, interpret):
    """-> core(q, k, v, g, s0, want_state) -> (o, S_T or None) for the chosen implementation."""
    if impl == "xla":
        def core(q, k, v, g, s0, want_state):
            return xla.chunked(q, k, v, g, s0, chunk_size=chunk_size, want_state=want_state)
        return core
    from . import pallas  # noqa: PLC0415 (keeps Pallas out of plain-XLA use)

    backend = impl.removeprefix("pallas_")
    cfg = pallas.default_config(backend, chunk_size, bool(interpret) if interpret != "tpu" else interpret)

    def core(q, k, v, g, s0, want_state, normalize=False):
        return pallas.causal_core(q, k, v, g, s0, cfg, want_state, normalize)
    return core


def _bidirectional(core, q, k, v, g):
    if g is None:  # no decay: o = q (K^T V), two matmuls
        prec = matmul_precision(q.dtype)
        acc = jnp.promote_types(q.dtype, jnp.float32)
        kv = jnp.einsum("bshk,bshv->bhkv", k, v, preferred_element_type=acc, precision=prec)
        return jnp.einsum("bthk,bhkv->bthv", q, kv.astype(q.dtype), preferred_element_type=acc,
                          precision=prec).astype(q.dtype)
    fwd, _ = core(q, k, v, g, None, False)
    # Reversed, weight of s > t is prod_{r=t+1..s} a_r: the flipped gates shifted one step later.
    g_rev = jnp.concatenate([jnp.zeros_like(g[:, :1]), jnp.flip(g, 1)[:, :-1]], axis=1)
    bwd, _ = core(*(jnp.flip(x, 1) for x in (q, k, v)), g_rev, None, False)
    acc = jnp.promote_types(q.dtype, jnp.float32)
    diag = jnp.sum(q.astype(acc) * k.astype(acc), -1, keepdims=True) * v.astype(acc)
    return (fwd.astype(acc) + jnp.flip(bwd, 1).astype(acc) - diag).astype(q.dtype)


def _validate(q, k, v, log_decay, causal, initial_state, return_final_state, chunk_size, impl, normalize,
              interpret):
    def bad(name, value, why):
        raise ValueError(f"linear_attention: {name}={value} {why}")

    if impl not in IMPLS:
        bad("impl", repr(impl), f"is not one of {IMPLS}")
    if interpret not in (None, True, False, "tpu"):
        bad("interpret", repr(interpret), "must be None, True, False or 'tpu'")
    for name, x in (("q", q), ("k", k), ("v", v)):
        if jnp.ndim(x) != 4:
            bad(f"{name}.shape", jnp.shape(x), "must be [B, T, H, D]")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            bad(f"{name}.dtype", x.dtype, "must be floating point")
    if q.shape != k.shape:
        bad("k.shape", k.shape, f"must equal q.shape={q.shape}")
    if v.shape[:3] != q.shape[:3]:
        bad("v.shape", v.shape, f"must share [B, T, H]={q.shape[:3]} with q")
    B, T, H, Dk = q.shape
    if T < 1:
        bad("q.shape", q.shape, "needs T >= 1")
    if log_decay is not None and jnp.shape(log_decay) not in ((H,), (B, T, H)):
        bad("log_decay.shape", jnp.shape(log_decay), f"must be [H]=({H},) or [B, T, H]={(B, T, H)}")
    if not isinstance(chunk_size, int) or chunk_size < 16 or chunk_size & (chunk_size - 1):
        bad("chunk_size", chunk_size, "must be a power of two >= 16")
    if not causal and (initial_state is not None or return_final_state):
        bad("causal", causal, "has no state to pass: initial_state / return_final_state need causal=True")
    if initial_state is not None:
        want = (B, H, Dk, v.shape[-1] + int(normalize))
        if jnp.shape(initial_state) != want:
            bad("initial_state.shape", jnp.shape(initial_state), f"must be {want} [B, H, Dk, Dv{' + 1' * normalize}]")
