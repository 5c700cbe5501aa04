"""Hessian-vector products of a language model's token-mean cross-entropy, chunked over tokens.

    mv = make_token_chunked_hvp(features_fn, readout_fn, params, (x, y), token_chunk=128)
    Hv = mv(v)                        # = make_hvp(loss_fn, params, (x, y))(v), without [B, T, V] tangents

L(θ) = Σ_{b,t} w_bt ℓ(z_bt, y_bt) / M with z = readout_fn(θ, features_fn(θ, x)) [B, T, V], ℓ the softmax
cross-entropy, w_bt = [y_bt ≥ 0] and M = max(Σ w, 1) (jaxlab.losses.cross_entropy). features_fn(θ, x) -> h
[B, T, D] (the last hidden states); readout_fn(θ, h [..., D]) -> logits [..., V] (e.g. a tied embedding
h Eᵀ). A plain forward-over-reverse HVP keeps the logits, their softmax, their tangents and cotangents live:
several [B, T, V] arrays, which at a real vocabulary dominate memory. Here the readout and the loss run in a
``lax.scan`` over chunks of ``token_chunk`` positions under ``jax.checkpoint``, so only [B, token_chunk, V]
slabs exist at any time (recomputed in the backward pass) while h, [B, T, D], is kept. The sum over chunks of
masked loss sums divided by the global count is the same loss, so the product is exact (tested against the
dense float64 Hessian). T must be a multiple of ``token_chunk``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature.hvp import hvp


def token_chunked_loss(features_fn: Callable, readout_fn: Callable, token_chunk: int) -> Callable:
    """(params, (x [B, T], y [B, T])) -> the token-mean cross-entropy, its readout and loss chunked over tokens."""

    def loss(params, batch):
        x, y = batch
        h = features_fn(params, x)                                    # [B, T, D]
        B, T, D = h.shape
        if T % token_chunk:
            raise ValueError(f"token_chunked_loss: T={T} is not a multiple of token_chunk={token_chunk}")
        n = T // token_chunk
        hs = jnp.swapaxes(h.reshape(B, n, token_chunk, D), 0, 1)      # [n, B, chunk, D]
        ys = jnp.swapaxes(y.reshape(B, n, token_chunk), 0, 1)

        @jax.checkpoint
        def chunk_sum(p, hc, yc):
            z = readout_fn(p, hc)                                     # [B, chunk, V]
            z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
            nll = jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, jnp.maximum(yc, 0)[..., None], -1)[..., 0]
            return jnp.sum(jnp.where(yc >= 0, nll, 0.0))

        total, _ = jax.lax.scan(lambda acc, c: (acc + chunk_sum(params, *c), None), jnp.zeros([], h.dtype),
                                (hs, ys))
        return total / jnp.maximum(jnp.sum(y >= 0), 1).astype(total.dtype)

    return loss


def make_token_chunked_hvp(features_fn: Callable, readout_fn: Callable, params, batch, token_chunk: int):
    """v -> H v of :func:`token_chunked_loss` at ``params`` on batch = (x [B, T], y [B, T])."""
    loss = token_chunked_loss(features_fn, readout_fn, token_chunk)
    return lambda v: hvp(lambda p: loss(p, batch), params, v)
