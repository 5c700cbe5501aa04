"""linear_attention (xla and both Pallas kernel families, interpreted on CPU) against the float64 reference.

Tolerances (max-abs error over max-abs reference value, outputs and every gradient): 1e-5 in float32,
2e-2 in bfloat16 (inputs rounded to bf16 first, so the error measured is the kernels', not the rounding's).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.kernels.linear_attention import linear_attention
from linear_attention_testing import problem, rel_err

IMPLS = ["xla", "pallas_gpu", "pallas_tpu"]
TOL = {jnp.float32: 1e-5, jnp.bfloat16: 2e-2}
ARGS = ("q", "k", "v", "log_decay", "initial_state")

# name -> (problem kwargs, linear_attention kwargs)
VARIANTS = {
    "linear": ({}, {}),
    "retention": ({"decay": "fixed"}, {}),
    "gla": ({"decay": "gate"}, {}),
    "normalized_gla": ({"decay": "gate", "positive": True}, {"normalize": True}),
    "bidirectional": ({}, {"causal": False}),
    "bidirectional_gla": ({"decay": "gate"}, {"causal": False}),
    "state_gla": ({"decay": "gate", "state": True}, {"return_final_state": True}),
    "state_normalized": ({"state": True, "positive": True},
                         {"normalize": True, "return_final_state": True}),
    "state_normalized_retention": ({"decay": "fixed", "state": True, "positive": True},
                                   {"normalize": True, "return_final_state": True}),
    "bidirectional_normalized_gla": ({"decay": "gate", "positive": True}, {"normalize": True, "causal": False}),
}


def _key(args, **kwargs):
    return args, tuple(sorted(kwargs.items()))


def run(inputs, dtype, seed=0, **kw):
    """Outputs and gradients of <outputs, random cotangent> w.r.t. every array input."""
    act = [a for a in ("q", "k", "v")]
    arrays = {n: jnp.asarray(x, dtype if n in act else (jnp.float64 if dtype == jnp.float64 else jnp.float32))
              for n, x in inputs.items() if x is not None}

    def f(arrays):
        return linear_attention(**arrays, **kw)

    out, vjp = jax.vjp(f, arrays)
    rng = np.random.default_rng(seed + 1)
    cot = jax.tree.map(lambda o: jnp.asarray(rng.standard_normal(o.shape), o.dtype), out)
    return out, vjp(cot)[0]


@functools.lru_cache(maxsize=None)
def _reference(key, dtype, kw):
    """The float64 reference on the same (rounded) inputs; computed once per problem (impls share it)."""
    inputs = problem(*key[0], **dict(key[1]))
    rounded = {n: (None if x is None else np.asarray(jnp.asarray(x, dtype if n in ("q", "k", "v") else jnp.float32),
                                                     np.float64))
               for n, x in inputs.items()}
    with jax.enable_x64():
        out, grads = jax.jit(lambda x: run(x, jnp.float64, impl="reference", **dict(kw)))(rounded)
        return jax.tree.map(np.asarray, (out, grads))


def check(impl, key, dtype=jnp.float32, chunk_size=16, **kw):
    """key: (problem args, problem kwargs) as hashable tuples."""
    inputs = {n: None if x is None else jnp.asarray(x, dtype if n in ("q", "k", "v") else jnp.float32)
              for n, x in problem(*key[0], **dict(key[1])).items()}
    out, grads = jax.jit(lambda x: run(x, dtype, impl=impl, chunk_size=chunk_size, **kw))(inputs)
    ref_out, ref_grads = _reference(key, dtype, tuple(sorted(kw.items())))
    errs = {}
    for i, (o, r) in enumerate(zip(jax.tree.leaves(out), jax.tree.leaves(ref_out))):
        errs[f"out{i}"] = rel_err(o, r)
    for n in ref_grads:
        errs[f"d{n}"] = rel_err(grads[n], ref_grads[n])
    worst = max(errs.values())
    assert worst <= TOL[dtype], errs
    return errs


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_float32(impl, variant):
    """Every variant at an awkward shape: T = 63 (not a chunk multiple), Dk = 48 != Dv = 32."""
    pkw, kw = VARIANTS[variant]
    check(impl, _key((1, 2, 63, 2, 48, 32), normalize=kw.get("normalize", False), **pkw), **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("T", [1, 500])
def test_sequence_lengths_float32(impl, T):
    """T = 1 (one padded chunk) and T = 500 (8 chunks of the default 64) with gate + state in and out."""
    check(impl, _key((2, 1, T, 2, 32, 48), decay="gate", state=True), chunk_size=64, return_final_state=True)


@pytest.mark.parametrize("impl", ["pallas_gpu", "pallas_tpu"])
@pytest.mark.parametrize("variant", ["linear", "retention", "gla", "state_normalized"])
def test_bfloat16(impl, variant):
    pkw, kw = VARIANTS[variant]
    check(impl, _key((3, 2, 100, 2, 64, 64), normalize=kw.get("normalize", False), **pkw), dtype=jnp.bfloat16,
          chunk_size=32, **kw)


@pytest.mark.parametrize("impl", IMPLS)
def test_split_sequence_equals_single_call(impl):
    """Two calls chained through the state (split off the chunk grid) give the one-call result."""
    p = problem(4, 2, 100, 2, 16, 24, decay="gate", positive=True)
    q, k, v, g = (jnp.asarray(p[n], jnp.float32) for n in ("q", "k", "v", "log_decay"))
    kw = dict(normalize=True, impl=impl, chunk_size=16, return_final_state=True)

    @jax.jit
    def both():
        full, s_full = linear_attention(q, k, v, log_decay=g, **kw)
        t = 37
        a, s_a = linear_attention(q[:, :t], k[:, :t], v[:, :t], log_decay=g[:, :t], **kw)
        b, s_b = linear_attention(q[:, t:], k[:, t:], v[:, t:], log_decay=g[:, t:], initial_state=s_a, **kw)
        return full, s_full, jnp.concatenate([a, b], axis=1), s_b

    full, s_full, split, s_split = both()
    assert rel_err(split, full) < 1e-5 and rel_err(s_split, s_full) < 1e-5


def test_xla_float64_matches_reference():
    """The XLA path keeps float64 end to end (states included) under x64."""
    pkw, kw = VARIANTS["state_normalized"]
    key = _key((6, 1, 50, 2, 8, 8), normalize=True, **pkw)
    inputs = problem(*key[0], **dict(key[1]))
    with jax.enable_x64():
        out, grads = jax.jit(lambda x: run(x, jnp.float64, impl="xla", chunk_size=16, **kw))(inputs)
        ref_out, ref_grads = jax.jit(lambda x: run(x, jnp.float64, impl="reference", **kw))(inputs)
    for a, r in zip(jax.tree.leaves((out, grads)), jax.tree.leaves((ref_out, ref_grads))):
        assert a.dtype == jnp.float64 and rel_err(a, r) < 1e-12
