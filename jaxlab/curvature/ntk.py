"""Function-space curvature: the empirical NTK Gram matrix and the Gauss–Newton matrix, matrix-free.

    mv = ntk_matvec(apply_fn, params, x)                # u [N, C] -> J Jᵀ u  [N, C]; J = ∂f(x)/∂θ  [N·C, n]
    vals, _ = ntk_top_eigenvalues(apply_fn, params, x, key, num_iters=20, k=1)
    w, scale = mse_row_weights(out_shape, y)            # masked MSE: valid rows [N] or [N, T], 1/valid count
    vals, _ = ntk_top_eigenvalues(apply_fn, params, x, key, 20, scale=scale, row_weights=w)  # = masked GGN λ
    mv = ggn_matvec(apply_fn, out_loss_fn, params, (x, y))   # v -> Jᵀ H_out J v on pytrees like params
    vals, vecs = lanczos(mv, params, key, 20)               # the GGN through the Hessian's interface
    e0, rr = ntk_start_from_krylov(JV, w, scale)        # from J V of a Hessian Lanczos run: the GGN's Ritz pair
    res = ntk_adaptive(lin.jvp, lin.vjp, lin.outputs, key, row_weights=w, scale=scale, tol=1e-3, v0=e0)

apply_fn(params, x) -> outputs [N, C] (e.g. ``lambda p, x: model.apply({"params": p}, x)``). The network is
linearised once per call (one forward pass, residuals kept); each matvec is one JVP + one transposed JVP, so the
Jacobian is never materialised. For the mean-reduced MSE ½‖f − y‖² (jaxlab's), H_out = I/N, so the GGN is JᵀJ/N
and shares its nonzero eigenvalues with the NTK Gram matrix scaled by 1/N (``scale=1/N`` below). With masked
labels (< 0: ignored) H_out = diag(w) ⊗ I_C / M, w the 0/1 valid rows and M their count, so the GGN JᵀH_out J
shares its nonzero eigenvalues with W^½ J Jᵀ W^½ / M (``row_weights=w, scale=1/M``, from mse_row_weights).
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature import linalg
from jaxlab.curvature.krylov import Krylov, lanczos_adaptive
from jaxlab.curvature.lanczos import lanczos


def _linearise(apply_fn: Callable, params, x):
    """(outputs [N, C], jvp: params-tangent -> [N, C], vjp: [N, C] -> params-tangent) at ``params``."""
    out, jvp = jax.linearize(lambda p: apply_fn(p, x), params)
    transpose = jax.linear_transpose(jvp, params)
    return out, jvp, lambda u: transpose(u)[0]


def mse_row_weights(outputs_shape, y, dtype=None):
    """Row weights and scale that make scale · W^½ J Jᵀ W^½ share the nonzero eigenvalues of the masked MSE's GGN.

    outputs_shape: the outputs' shape (..., C), e.g. [N, C] or [N, T, C]. y: integer labels with one entry per
    output row (shape outputs_shape[:-1], or anything of that size, as jaxlab.losses.mse reshapes them), < 0
    marking ignored rows; or dense float targets of shape outputs_shape (the plain mean over rows; every row
    counts). dtype: of the results (default: JAX's default float, float64 under x64).
    Returns (weights outputs_shape[:-1], 1 for a row the loss counts and 0 otherwise; scale [], 1/max(M, 1) with
    M the counted rows), exactly jaxlab.losses.mse's masked mean ½ Σ_rows w ‖f - onehot(y)‖² / max(Σ w, 1), whose
    Hessian in the outputs is diag(w) ⊗ I_C · scale. Jittable (y may be traced; shapes are static).
    """
    shape = tuple(outputs_shape)
    dtype = jnp.result_type(float) if dtype is None else dtype
    rows = shape[:-1]
    if tuple(y.shape) == shape:                       # dense targets: every row counts
        w = jnp.ones(rows, dtype)
    elif math.prod(y.shape) == math.prod(rows):       # one label per row, as the loss flattens them
        w = (jnp.reshape(y, rows) >= 0).astype(dtype)
    else:
        raise ValueError(f"mse_row_weights: labels {tuple(y.shape)} fit neither the output rows {rows} nor the "
                         f"outputs {shape}")
    return w, 1.0 / jnp.maximum(jnp.sum(w), 1.0)


def ntk_matvec(apply_fn: Callable, params, x, scale=1.0, row_weights=None):
    """u [..., C] -> scale · W^½ J Jᵀ W^½ u [..., C], the empirical NTK Gram matrix on output space (W = I if None).

    row_weights: None, or non-negative weights of shape outputs[:-1] ([N] or [N, T]) applied as W^½ on both sides
    (a symmetric operator with the nonzero eigenvalues of scale · Jᵀ W J); scale: a float or traced scalar.
    """
    _, jvp, vjp = _linearise(apply_fn, params, x)
    if row_weights is None:
        return lambda u: jax.tree.map(lambda a: scale * a, jvp(vjp(u)))
    r = jnp.sqrt(row_weights)[..., None]              # [..., 1]: one weight per row, broadcast over outputs C
    return lambda u: scale * r * jvp(vjp(r * u))


def ntk_top_eigenvalues(apply_fn: Callable, params, x, key: jax.Array, num_iters: int, k: int = 1,
                        scale=1.0, return_vectors: bool = False, row_weights=None):
    """Top-k eigenvalues [k] (descending) of scale · W^½ J Jᵀ W^½ by Lanczos in output space (dimension N·C).

    Returns (eigvals [k], eigvecs [k, ..., C] or None). scale = 1/N gives the GGN's eigenvalues for a mean loss;
    for jaxlab's masked MSE pass ``row_weights, scale = mse_row_weights(outputs_shape, y)``: the eigenvalues are
    then the Gauss–Newton matrix's exactly (masked rows add an exact null space, which Lanczos handles).
    """
    out_shape = jax.eval_shape(lambda p: apply_fn(p, x), params)
    like = jnp.zeros(out_shape.shape, out_shape.dtype)
    if row_weights is not None:
        row_weights = jnp.asarray(row_weights, out_shape.dtype)
        if row_weights.shape != out_shape.shape[:-1]:
            raise ValueError(f"ntk_top_eigenvalues: row_weights {row_weights.shape} must be the outputs' rows "
                             f"{out_shape.shape[:-1]}")
    return lanczos(ntk_matvec(apply_fn, params, x, scale, row_weights), like, key, num_iters, k=k,
                   return_vectors=return_vectors)


def ggn_matvec(apply_fn: Callable, out_loss_fn: Callable, params, batch):
    """v -> Jᵀ H_out J v, the generalised Gauss–Newton matrix (PSD for convex out_loss_fn).

    out_loss_fn(outputs [N, C], y) -> scalar (e.g. ``jaxlab.losses.mse``); batch = (x, y). H_out is the
    Hessian of out_loss_fn in the outputs, applied by forward-over-reverse; H = GGN + Σ (∂ℓ/∂f)·∂²f/∂θ².
    """
    x, y = batch
    out, jvp, vjp = _linearise(apply_fn, params, x)
    out_grad = jax.grad(lambda o: out_loss_fn(o, y))

    def matvec(v):
        jv = jvp(v)
        h_jv = jax.jvp(out_grad, (out,), (jv,))[1]
        return vjp(h_jv)

    return matvec


def ntk_adaptive(jvp: Callable, vjp: Callable, outputs, key: jax.Array, *, row_weights, scale, k: int = 1,
                 tol=1e-3, max_iters: int = 40, v0=None) -> Krylov:
    """Top-k of scale · W^½ J Jᵀ W^½ in output space by ``krylov.lanczos_adaptive`` (stopped by Ritz residuals).

    jvp: params-tangent -> outputs-like; vjp: outputs-like -> params (e.g. from ``jaxlab.curvature.linearise``);
    outputs: the outputs (shape/dtype only); row_weights [..rows] and scale as :func:`mse_row_weights` gives them;
    v0: a start vector like outputs (e.g. the previous measurement's, or :func:`ntk_start_from_krylov`'s).
    Returns ``Krylov`` with eigvecs [k, ...outputs] (unit) always computed.
    """
    r = jnp.sqrt(jnp.asarray(row_weights, outputs.dtype))[..., None]
    mv = lambda u: scale * r * jvp(vjp(r * u))  # noqa: E731
    like = jnp.zeros(outputs.shape, outputs.dtype)
    return lanczos_adaptive(mv, like, key, k=k, tol=tol, max_iters=min(int(max_iters), like.size), v0=v0,
                            return_vectors=True)


def ntk_start_from_krylov(JV: jax.Array, row_weights, scale):
    """The Gauss–Newton matrix's Rayleigh–Ritz pair on a Hessian Krylov space, from its recorded J v_i.

    JV [M, ...outputs]: J v_i of orthonormal v_i (rows past the steps done are zero: they add zero eigenvalues).
    With A = W^½ J V, Vᵀ G V = scale · A Aᵀ [M, M]; its top eigenpair (μ, s) gives μ ≤ λ1(G) and the output-space
    vector e = W^½ J V s, a start for :func:`ntk_adaptive` (the NTK's eigenvector is W^½ J g for G's g).
    Returns (e [...outputs], μ []).
    """
    r = jnp.sqrt(jnp.asarray(row_weights, JV.dtype))[None, ..., None]
    A = (r * JV).reshape(JV.shape[0], -1)
    theta, s = linalg.eigh(scale * (A @ A.T))
    return (s[:, -1] @ A).reshape(JV.shape[1:]), theta[-1]
