"""The generalised Gauss–Newton (GGN) operator G = Jᵀ H_out J, matrix-free, for MSE and cross-entropy.

    mv = make_ggn(apply_fn, params, (x, y), loss="mse")             # v -> G v (like params)
    mv = make_ggn(apply_fn, params, (x, y), loss="cross_entropy")
    mv = make_ggn(apply_fn, params, (x, y), loss=my_out_loss)       # any (outputs, y) -> scalar: H_out by autodiff
    mv = ggn_from(lin, loss="mse")                                  # from a shared jaxlab.curvature.linearise
    vals = lanczos_adaptive(mv, params, key, k=1, tol=1e-3).eigvals

J = ∂f(x)/∂θ [rows·C, n] (never formed), H_out = ∂²ℓ/∂f² of the loss in the outputs, block diagonal over rows.
With labels y (one per output row, < 0 = ignored) and w_r = [y_r ≥ 0], M = max(Σ w_r, 1) (jaxlab.losses):
  mse            ℓ = Σ_r w_r ½‖f_r − onehot(y_r)‖² / M         H_out = diag(w) ⊗ I_C / M
                 (dense float targets y of the outputs' shape: every row counts)
  cross_entropy  ℓ = Σ_r w_r (logsumexp f_r − f_r[y_r]) / M    H_out,r = w_r (diag(p_r) − p_r p_rᵀ) / M, p = softmax
Both are PSD, so G is PSD; H = G + Σ_r (∂ℓ/∂f_r)·∂²f_r/∂θ². Each product is one JVP and one transposed JVP of
the network (the outputs' H_out is applied row by row, so nothing [rows, C, C] is formed).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature.linearise import Linearised


def _rows(outputs, labels):
    """(f [R, C], w [R] float 0/1, M []): the rows the loss averages and its count (dense targets: all rows)."""
    f = outputs.reshape(-1, outputs.shape[-1])
    if labels.shape == outputs.shape:
        w = jnp.ones(f.shape[0], f.dtype)
    else:
        w = (labels.reshape(-1) >= 0).astype(f.dtype)
    return f, w, jnp.maximum(jnp.sum(w), 1.0)


def output_hessian(loss, outputs, labels) -> Callable:
    """u (like outputs) -> H_out u for ``loss`` "mse", "cross_entropy" (closed forms above) or a callable
    out_loss(outputs, labels) (forward-over-reverse in the outputs)."""
    if callable(loss):
        grad = jax.grad(lambda o: loss(o, labels))
        return lambda u: jax.jvp(grad, (outputs,), (u,))[1]
    f, w, m = _rows(outputs, labels)
    if loss == "mse":
        return lambda u: (u.reshape(f.shape) * (w / m)[:, None]).reshape(u.shape).astype(u.dtype)
    if loss == "cross_entropy":
        p = jax.nn.softmax(f.astype(jnp.promote_types(f.dtype, jnp.float32)), axis=-1)

        def apply(u):
            u2 = u.reshape(f.shape).astype(p.dtype)
            hu = p * u2 - p * jnp.sum(p * u2, axis=-1, keepdims=True)
            return (hu * (w / m)[:, None]).reshape(u.shape).astype(u.dtype)
        return apply
    raise ValueError(f"output_hessian: loss {loss!r}: choose 'mse', 'cross_entropy' or pass (outputs, y) -> scalar")


def ggn_from(lin: Linearised, loss=None) -> Callable:
    """v -> Jᵀ H_out J v from a shared linearisation (``loss``: as in :func:`output_hessian`; None: the
    linearisation's own out_loss by autodiff)."""
    h_out = output_hessian(lin.out_loss if loss is None else loss, lin.outputs, lin.labels)
    return lambda v: lin.vjp(h_out(lin.jvp(v)))


def make_ggn(apply_fn: Callable, params, batch, loss="mse") -> Callable:
    """v -> G v at ``params`` on batch = (x, y); apply_fn(params, x) -> outputs [N, C] or [B, T, C]."""
    x, y = batch
    out, jvp = jax.linearize(lambda p: apply_fn(p, x), params)
    transpose = jax.linear_transpose(jvp, params)
    h_out = output_hessian(loss, out, y)
    return lambda v: transpose(h_out(jvp(v)))[0]
