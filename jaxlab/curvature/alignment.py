"""The sharpness gradient and its alignment with the parameters and the loss gradient.

    g_lam = sharpness_gradient(loss_fn, params, u)      # ∇θ (uᵀ H(θ) u), u fixed: = ∇λ_max for a simple λ_max
    stats = alignment(loss_fn, params, u)                # cosines / inner products, a dict of scalars
    shares = layer_shares(u)                             # {"Dense_0/kernel": ‖u_leaf‖²/‖u‖², ...}

Why: under GD with decoupled weight decay, θ ← θ − η(∇L + λ_wd θ), so to first order the sharpness changes by
−η(∇λ·∇L + λ_wd ∇λ·θ) per step. Weight decay lowers the sharpness when ∇λ·θ > 0 (for tanh MLPs the sharpness
grows with the weight scale, so ∇λ is aligned with θ), which is the mechanism that can hold the sharpness below
2/η ("Does Weight Decay Enhance Training Stability?"). ``alignment`` reports both terms.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature.hvp import hvp
from jaxlab.tree import path_str, tree_vdot


def sharpness_gradient(loss_fn: Callable, params, u):
    """∇θ (ûᵀ H(θ) û) with û = u/‖u‖ held fixed (a third derivative: reverse mode over the forward-over-reverse
    HVP). By Hellmann–Feynman this is ∇θ λ when û is the eigenvector of a simple eigenvalue λ. loss_fn: params ->
    scalar. Returns a pytree like params."""
    u = _unit(u)
    return jax.grad(lambda p: tree_vdot(u, hvp(loss_fn, p, u)))(params)


def _unit(u):
    norm = jnp.sqrt(tree_vdot(u, u))
    return jax.tree.map(lambda a: a / norm, u)


def _cos(a, b):
    return tree_vdot(a, b) / jnp.maximum(jnp.sqrt(tree_vdot(a, a)) * jnp.sqrt(tree_vdot(b, b)), jnp.finfo(jnp.result_type(float)).tiny)


def alignment(loss_fn: Callable, params, u, theta_mask=None) -> dict:
    """Scalars relating ∇λ (the sharpness gradient along u), θ, ∇L and u.

    theta_mask: optional pytree of bools like params (e.g. the weight-decay mask): θ is then the decayed leaves
    only, the direction weight decay actually moves. Returns {"lambda": ûᵀHû, "cos_glam_theta",
    "cos_glam_grad", "cos_grad_theta", "cos_u_grad", "cos_u_theta", "glam_dot_grad" (∇λ·∇L),
    "glam_dot_theta" (∇λ·θ), "glam_norm", "grad_norm", "theta_norm"}.
    """
    u = _unit(u)
    grad = jax.grad(loss_fn)(params)
    lam, glam = jax.value_and_grad(lambda p: tree_vdot(u, hvp(loss_fn, p, u)))(params)
    theta = params if theta_mask is None else jax.tree.map(lambda p, m: p if m else jnp.zeros_like(p),
                                                           params, theta_mask)
    return {
        "lambda": lam,
        "cos_glam_theta": _cos(glam, theta), "cos_glam_grad": _cos(glam, grad), "cos_grad_theta": _cos(grad, theta),
        "cos_u_grad": _cos(u, grad), "cos_u_theta": _cos(u, theta),
        "glam_dot_grad": tree_vdot(glam, grad), "glam_dot_theta": tree_vdot(glam, theta),
        "glam_norm": jnp.sqrt(tree_vdot(glam, glam)), "grad_norm": jnp.sqrt(tree_vdot(grad, grad)), "theta_norm": jnp.sqrt(tree_vdot(theta, theta)),
    }


def layer_shares(u) -> dict:
    """{leaf path: ‖u_leaf‖²/‖u‖²} (sums to 1): which layers the (top) eigenvector lives in. u: one vector (take
    ``eigvec(eigvecs, 0)`` from a lanczos result)."""
    total = tree_vdot(u, u)
    flat = jax.tree_util.tree_flatten_with_path(u)[0]
    return {path_str(path): jnp.vdot(leaf, leaf) / total for path, leaf in flat}
