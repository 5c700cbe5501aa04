"""Reference linear attention, written straight from the definition (for tests; float64-capable).

Definitions (G_t = sum_{r<=t} g_r is the cumulative log decay; g = 0 when there is no decay):

    causal:      o_t = sum_{s<=t} exp(G_t - G_s) (q_t . k_s) v_s  +  exp(G_t) q_t S_0
                 S_T = exp(G_T) S_0 + sum_s exp(G_T - G_s) k_s^T v_s
    non-causal:  o_t = sum_s exp(-|G_t - G_s|) (q_t . k_s) v_s
    normalize:   o_t = num_t / (den_t + eps), where den_t is the same sum with v_s replaced by 1
                 (the running, decayed key sum z dotted with q_t); the state then carries z as
                 an extra last column: S: [B, H, Dk, Dv + 1].

`quadratic` materialises the [T, T] weight matrix; `recurrent` scans the state token by token. They
share nothing but the definition, so each checks the other; neither is chunked, so both check the
chunked implementations independently. Shapes: q, k: [B, T, H, Dk]; v: [B, T, H, Dv]; g: [B, T, H].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

NORMALIZE_EPS = 1e-6


def _compute_dtype(*xs):
    # float64 stays float64 (tests run under enable_x64); everything narrower computes in float32.
    dt = jnp.result_type(*xs)
    return jnp.float64 if dt == jnp.float64 else jnp.float32


def _gates(g, B, T, H, dtype):
    if g is None:
        return jnp.zeros((B, T, H), dtype)
    g = jnp.asarray(g, dtype)
    return jnp.broadcast_to(g, (B, T, H)) if g.ndim == 1 else g


def quadratic(q, k, v, g=None, *, scale, causal=True, normalize=False, initial_state=None):
    """Quadratic form. Returns (o: [B, T, H, Dv] in q's dtype, S_T: [B, H, Dk, Dv(+1)] float)."""
    B, T, H, _ = q.shape
    dt = _compute_dtype(q, k, v)
    hi = jax.lax.Precision.HIGHEST
    q, k, v = (x.astype(dt) for x in (q, k, v))
    q = q * scale
    G = jnp.cumsum(_gates(g, B, T, H, dt), axis=1).transpose(0, 2, 1)            # [B, H, T]
    diff = G[:, :, :, None] - G[:, :, None, :]                                   # G_t - G_s
    if causal:
        mask = jnp.tril(jnp.ones((T, T), bool))
        w = jnp.exp(jnp.where(mask, diff, -jnp.inf))
    else:
        w = jnp.exp(-jnp.abs(diff))
    if normalize:
        v = jnp.concatenate([v, jnp.ones(v.shape[:-1] + (1,), dt)], axis=-1)
    scores = jnp.einsum("bthd,bshd->bhts", q, k, precision=hi) * w
    o = jnp.einsum("bhts,bshv->bthv", scores, v, precision=hi)
    S_T = jnp.einsum("bhs,bshk,bshv->bhkv", jnp.exp(G[:, :, -1:] - G), k, v, precision=hi)
    if initial_state is not None:
        s0 = initial_state.astype(dt)
        o = o + jnp.einsum("bthk,bhkv->bthv", q * jnp.exp(G).transpose(0, 2, 1)[..., None], s0, precision=hi)
        S_T = S_T + jnp.exp(G[:, :, -1])[:, :, None, None] * s0
    return _finish(o, normalize), S_T


def recurrent(q, k, v, g=None, *, scale, normalize=False, initial_state=None):
    """Token-by-token causal recurrence S_t = exp(g_t) S_{t-1} + k_t^T v_t, o_t = q_t S_t."""
    B, T, H, Dk = q.shape
    dt = _compute_dtype(q, k, v)
    q, k, v = (x.astype(dt) for x in (q, k, v))
    if normalize:
        v = jnp.concatenate([v, jnp.ones(v.shape[:-1] + (1,), dt)], axis=-1)
    a = jnp.exp(_gates(g, B, T, H, dt))
    s0 = jnp.zeros((B, H, Dk, v.shape[-1]), dt) if initial_state is None else initial_state.astype(dt)

    def step(S, inp):
        qt, kt, vt, at = inp                                                      # [B, H, D], [B, H]
        S = at[:, :, None, None] * S + kt[..., :, None] * vt[..., None, :]
        return S, jnp.einsum("bhk,bhkv->bhv", qt * scale, S, precision=jax.lax.Precision.HIGHEST)

    xs = tuple(jnp.moveaxis(x, 1, 0) for x in (q, k, v, a))
    S_T, o = jax.lax.scan(step, s0, xs)
    return _finish(jnp.moveaxis(o, 0, 1), normalize), S_T


def _finish(o, normalize):
    if normalize:
        o = o[..., :-1] / (o[..., -1:] + NORMALIZE_EPS)
    return o
