"""Pallas kernels specifically: multi-block tiling, fully written outputs, the TPU interpreter, lowering for
CUDA (Triton) and TPU (Mosaic) from this CPU machine, and argument validation."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import pallas as pl

from jaxlab.kernels.linear_attention import linear_attention, pallas, reference
from linear_attention_testing import problem, rel_err

# Head dims that split into two feature blocks per head (no padding, so every buffer element is live).
BLOCKED = {"gpu": dict(D=32, block=16), "tpu": dict(D=256, block=128)}


def _cfg(backend, interpret=True):
    """Two feature blocks per head; TPU: 2 chunks per grid step, so T = 64 (4 chunks) takes 2 steps."""
    b = BLOCKED[backend]["block"]
    return dataclasses.replace(pallas.default_config(backend, 16, interpret), block_k=b, block_v=b,
                               chunks_per_step=2)


def _inputs(backend, seed=0, normalize=False):
    D = BLOCKED[backend]["D"]
    p = problem(seed, 1, 64, 2, D, D, decay="gate", state=True, positive=normalize, normalize=normalize)
    return {n: jnp.asarray(x, jnp.float32) for n, x in p.items()}


@pytest.mark.parametrize("interpret", [True, "tpu"])
def test_interpreters_poison_unwritten_outputs(interpret):
    """The check below is meaningful: an output the kernel never writes comes back NaN."""
    def half(x_ref, o_ref):
        o_ref[:8, :] = x_ref[:8, :]

    x = jnp.ones((16, 128), jnp.float32)
    if interpret == "tpu":
        from jax.experimental.pallas import tpu as pltpu
        interpret = pltpu.InterpretParams(uninitialized_memory="nan")
    o = pl.pallas_call(half, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype), interpret=interpret)(x)
    assert np.all(np.isfinite(o[:8])) and np.all(np.isnan(o[8:]))


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("backend,interpret", [("gpu", True), ("tpu", "tpu")])
def test_multiblock_matches_reference(backend, interpret, normalize):
    """Two feature blocks per head, four chunks (TPU: two grid steps of two), gate and state in and out, against the float64 reference.
    With normalize both feature blocks load the per-chunk key sums (key_sums), and the normaliser's decay
    gradient is counted by one block only (twice would fail the tolerance).

    The TPU kernels run under Pallas' TPU interpreter (VMEM, DMA and grid semantics). No dimension is padded,
    so with the interpreters' NaN-poisoned buffers a finite result means every element of every kernel
    output was written: o, S_T, dq, dk, dv and dS_0 directly, and the per-chunk states and gate rows through
    the decay gradient, whose sums propagate any NaN."""
    cfg = _cfg(backend, interpret)
    x = _inputs(backend, seed=1, normalize=normalize)
    scale = 0.2

    def f(x, core):
        return core(x["q"] * scale, x["k"], x["v"], x["log_decay"], x["initial_state"])

    def ref_core(q, k, v, g, s0):
        return reference.quadratic(q, k, v, g, scale=1.0, initial_state=s0, normalize=normalize)

    cot = jax.tree.map(lambda a: jnp.ones_like(a), jax.eval_shape(lambda: f(x, ref_core)))
    @jax.jit
    def kernel_fn(x):
        out, vjp = jax.vjp(lambda x: f(x, lambda *a: pallas.causal_core(*a, cfg, True, normalize)), x)
        return out, vjp(jax.tree.map(lambda c: c.astype(jnp.float32), cot))[0]

    out, grads = kernel_fn(x)
    with jax.enable_x64():
        x64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), x)
        cot64 = jax.tree.map(lambda c: jnp.asarray(np.asarray(c), jnp.float64), cot)

        @jax.jit
        def ref_fn(x64):
            ref, vjp64 = jax.vjp(lambda x: f(x, ref_core), x64)
            return ref, vjp64(cot64)[0]

        ref, ref_grads = ref_fn(x64)
    for a, r in zip(jax.tree.leaves((out, grads)), jax.tree.leaves((ref, ref_grads))):
        assert rel_err(a, r) < 1e-5


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_lowers_for_accelerators(platform, dtype):
    """Forward and backward lower to Triton / Mosaic (compilation itself needs the device)."""
    backend = "gpu" if platform == "cuda" else "tpu"
    cfg = pallas.default_config(backend, 64)
    B, T, H, D = 2, 200, 2, 64
    sd = jax.ShapeDtypeStruct

    for decay in (False, True):
        def loss(q, k, v, g, s0):
            o, s = pallas.causal_core(q, k, v, g if decay else None, s0, cfg, True)
            return jnp.sum(o.astype(jnp.float32)) + jnp.sum(s)

        args = (sd((B, T, H, D), dtype), sd((B, T, H, D), dtype), sd((B, T, H, 2 * D), dtype),
                sd((B, T, H), jnp.float32), sd((B, H, D, 2 * D), jnp.float32))
        text = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3, 4))).trace(*args).lower(
            lowering_platforms=(platform,)).as_text()
        assert text.count("__gpu$xla.gpu.triton" if platform == "cuda" else "@tpu_custom_call") == 4


def test_rel_err_rejects_nan():
    with pytest.raises(AssertionError):
        rel_err(np.array([1.0, np.nan]), np.array([1.0, 1.0]))


@pytest.mark.parametrize("kwargs,match", [
    (dict(impl="cuda"), "impl"),
    (dict(chunk_size=48), "chunk_size"),
    (dict(log_decay=jnp.zeros((3,))), "log_decay.shape"),
    (dict(causal=False, return_final_state=True), "causal"),
    (dict(initial_state=jnp.zeros((1, 2, 8, 8))), "initial_state.shape"),
    (dict(interpret="yes"), "interpret"),
])
def test_bad_arguments_named(kwargs, match):
    q = jnp.zeros((1, 5, 2, 8))
    with pytest.raises(ValueError, match=match):
        linear_attention(q, q, jnp.zeros((1, 5, 2, 4)), **kwargs)


def test_bad_shapes_named():
    q = jnp.zeros((1, 5, 2, 8))
    with pytest.raises(ValueError, match="k.shape"):
        linear_attention(q, jnp.zeros((1, 5, 2, 4)), q)
    with pytest.raises(ValueError, match="v.shape"):
        linear_attention(q, q, jnp.zeros((1, 6, 2, 8)))


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("backend", ["gpu", "tpu"])
def test_constant_decay_and_unused_state_gradients(backend, normalize):
    """With symbolic zeros the VJP skips the decay gradient (constant decay) and the state input (unused S_T);
    gradients w.r.t. q, k, v are unchanged (normalized too: key sums loaded, no gate rows)."""
    p = problem(5, 1, 40, 2, 16, 16, decay="fixed", positive=normalize)
    q, k, v = (jnp.asarray(p[n], jnp.float32) for n in ("q", "k", "v"))
    g = jnp.broadcast_to(jnp.asarray(p["log_decay"], jnp.float32), (1, 40, 2))
    cfg = pallas.default_config(backend, 16, True)

    def loss(q, k, v, core):
        return jnp.sum(jnp.sin(core(q, k, v, g, None)[0]))

    grads = jax.jit(jax.grad(lambda *a: loss(*a, lambda *b: pallas.causal_core(*b, cfg, True, normalize)),
                             argnums=(0, 1, 2)))(q, k, v)
    with jax.enable_x64():
        g = jnp.asarray(np.asarray(g), jnp.float64)
        ref = jax.jit(jax.grad(lambda *a: loss(*a, lambda q, k, v, g, s0: reference.quadratic(
                                   q, k, v, g, scale=1.0, normalize=normalize)),
                               argnums=(0, 1, 2)))(*(jnp.asarray(np.asarray(x), jnp.float64) for x in (q, k, v)))
    for a, r in zip(grads, ref):
        assert rel_err(a, r) < 1e-5
