"""Function-space curvature: the empirical NTK Gram matrix and the Gauss–Newton matrix, matrix-free.

    mv = ntk_matvec(apply_fn, params, x)                # u [N, C] -> J Jᵀ u  [N, C]; J = ∂f(x)/∂θ  [N·C, n]
    vals, _ = ntk_top_eigenvalues(apply_fn, params, x, key, num_iters=20, k=1)
    mv = ggn_matvec(apply_fn, out_loss_fn, params, (x, y))   # v -> Jᵀ H_out J v on pytrees like params
    vals, vecs = lanczos(mv, params, key, 20)               # the GGN through the Hessian's interface

apply_fn(params, x) -> outputs [N, C] (e.g. ``lambda p, x: model.apply({"params": p}, x)``). The network is
linearised once per call (one forward pass, residuals kept); each matvec is one JVP + one transposed JVP, so the
Jacobian is never materialised. For the mean-reduced MSE ½‖f − y‖² (jaxlab's), H_out = I/N, so the GGN is JᵀJ/N
and shares its nonzero eigenvalues with the NTK Gram matrix scaled by 1/N (``scale=1/N`` below).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature.lanczos import lanczos


def _linearise(apply_fn: Callable, params, x):
    """(outputs [N, C], jvp: params-tangent -> [N, C], vjp: [N, C] -> params-tangent) at ``params``."""
    out, jvp = jax.linearize(lambda p: apply_fn(p, x), params)
    transpose = jax.linear_transpose(jvp, params)
    return out, jvp, lambda u: transpose(u)[0]


def ntk_matvec(apply_fn: Callable, params, x, scale: float = 1.0):
    """u [N, C] -> scale · J Jᵀ u [N, C], the empirical NTK Gram matrix (N·C × N·C) acting on output space."""
    _, jvp, vjp = _linearise(apply_fn, params, x)
    return lambda u: jax.tree.map(lambda a: scale * a, jvp(vjp(u)))


def ntk_top_eigenvalues(apply_fn: Callable, params, x, key: jax.Array, num_iters: int, k: int = 1,
                        scale: float = 1.0, return_vectors: bool = False):
    """Top-k eigenvalues [k] (descending) of scale · J Jᵀ by Lanczos in output space (dimension N·C).

    Returns (eigvals [k], eigvecs [k, N, C] or None). scale = 1/N gives the GGN's eigenvalues for a mean loss.
    """
    out_shape = jax.eval_shape(lambda p: apply_fn(p, x), params)
    like = jnp.zeros(out_shape.shape, out_shape.dtype)
    return lanczos(ntk_matvec(apply_fn, params, x, scale), like, key, num_iters, k=k,
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
