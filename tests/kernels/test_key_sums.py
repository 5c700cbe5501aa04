"""The normaliser's cross-chunk key sums (computed in XLA, loaded by the kernels) against a float64
token-by-token recurrence in numpy: z_t = exp(g_t) z_{t-1} + k_t, and its reverse-mode gradient."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.kernels.linear_attention import key_sums
from jaxlab.kernels.linear_attention.chunk_math import LOG2E
from jaxlab.kernels.linear_attention.common import chunk_local_cumsum

B, T, H, D, C = 2, 96, 3, 8, 16


def _inputs(decay, state, seed=0):
    r = np.random.default_rng(seed)
    k, q = r.normal(size=(2, B, T, H, D))
    g = -r.uniform(0.01, 0.5, size=(B, T, H)) if decay else np.zeros((B, T, H))
    dden = r.normal(size=(B, H, T))
    z0, dzT = (r.normal(size=(2, B, H, 1, D)) if state else (None, None))
    b = None
    if decay:  # as pallas._pad builds it: chunk-local cumulative log2 decay, [B, H, T]
        b = chunk_local_cumsum(jnp.asarray(g, jnp.float32) * LOG2E, C).transpose(0, 2, 1)
    return k, q, g, dden, z0, dzT, b


def _f32(x):
    return None if x is None else jnp.asarray(x, jnp.float32)


@pytest.mark.parametrize("decay", [False, True])
@pytest.mark.parametrize("state", [False, True])
def test_key_sums_match_float64_recurrence(decay, state):
    """entering: the key sum before each chunk's first step and after the last; leaving_grads: for each chunk,
    the gradient reaching the key sum after its last step from later steps' den_t = q_t . z_t (cotangent dden_t)
    and from z_T (cotangent dzT); dz0 that reaching z0. Tolerance 1e-5 relative to the largest entry (float32)."""
    k, q, g, dden, z0, dzT, b = _inputs(decay, state)
    a = np.exp(g).transpose(0, 2, 1)[..., None]                  # [B, H, T, 1]
    kk, qq = k.transpose(0, 2, 1, 3), q.transpose(0, 2, 1, 3)    # [B, H, T, D]
    z = np.zeros((B, H, D)) if z0 is None else z0[:, :, 0]
    before = []
    for t in range(T):
        if t % C == 0:
            before.append(z)
        z = a[:, :, t] * z + kk[:, :, t]
    u = np.zeros((B, H, D)) if dzT is None else dzT[:, :, 0]     # dL/dz_t from steps after t
    after = [None] * (T // C)
    for t in reversed(range(T)):
        if t % C == C - 1:
            after[t // C] = u
        u = a[:, :, t] * (u + dden[:, :, t, None] * qq[:, :, t])  # z_t = a_t z_{t-1} + k_t
    zs, zT = key_sums.entering(_f32(k), b, _f32(z0), C)
    dzs, dz0 = key_sums.leaving_grads(_f32(q), _f32(dden), b, _f32(dzT), C)
    for got, want in ((zs[:, :, :, 0], np.stack(before, 2)), (zT[:, :, 0], z), (dzs[:, :, :, 0], np.stack(after, 2)),
                      (dz0[:, :, 0], u)):
        assert got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-5 * np.abs(want).max(), rtol=0)


def test_entering_rounds_only_the_kernel_copy():
    """zs comes back in the kernels' input dtype (bf16 here, as they round the state for their matmuls); z_T,
    the returned final state, stays float32."""
    k, *_ = _inputs(False, False)
    zs, zT = key_sums.entering(jnp.asarray(k, jnp.bfloat16), None, None, C, jnp.bfloat16)
    ref, _ = key_sums.entering(jnp.asarray(k, jnp.bfloat16).astype(jnp.float32), None, None, C)
    assert zs.dtype == jnp.bfloat16 and zT.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(zs), np.asarray(ref.astype(jnp.bfloat16)))
    assert zT.shape == (B, H, 1, D)
