"""Per-eigen-mode linear recurrences of ZO optimisers on a quadratic, for jaxlab.curvature.zo_stability.

In one eigen-mode of the step operator (H's eigenvalue λ; for frozen ZO-Adam an eigenvalue μ of P̃⁻¹H, P̃ a
preconditioner that commutes with H) the estimate is g = λθ + ξ, ξ the estimator's noise in that mode, and the
optimiser is linear. With x = ηλ (ηd·λ with d = 1/P̃ for Adam) and every auxiliary state scaled by the step
(w = η·m, or ηd·m), the mode's state z = (θ, w, ...) follows

    z' = B(x) z + c · (η d ξ),          B affine in x (x only enters through η·d·g),

and ``mode_map(x, p) -> (B [k, k], c [k])`` returns that pair; z[0] is the parameter coordinate. ``p`` is the run's
:class:`jaxlab.optim.numbers.Numbers`, possibly traced (as in jaxlab.optim.bases). The maps are pure jnp and
work under jit/vmap over x and p. Deterministic limits (largest stable x, from the Jury conditions):
sgd 2, heavy ball 2(1+β), Nesterov 2(1+β)/(1+2β), frozen Adam 2(1+β1)/(1−β1) (Cohen et al., 2022's 38/η).
"""
from __future__ import annotations

import jax.numpy as jnp


def _pair(rows, c, x):
    dtype = jnp.result_type(x, float)
    return jnp.asarray(rows, dtype), jnp.asarray(c, dtype)


def sgd_modes(x, p=None):
    """ZO-GD (optax.identity): θ' = θ − ηg, i.e. θ' = (1 − x)θ − ηξ: B = [[1 − x]], c = [−1]."""
    return _pair([[1.0 - x]], [-1.0], x)


def heavy_ball_modes(x, p):
    """ZO-GDM (optax.trace, no dampening): m' = βm + g, θ' = θ − ηm'; z = (θ, ηm), β = p.momentum."""
    b = p.momentum
    one = jnp.ones_like(x)
    return _pair([[1.0 - x, -b * one], [x, b * one]], [-one, one], x)


def nesterov_modes(x, p):
    """Nesterov (optax.trace(nesterov=True)): m' = βm + g, θ' = θ − η(g + βm'); z = (θ, ηm), β = p.momentum."""
    b = p.momentum
    one = jnp.ones_like(x)
    return _pair([[1.0 - (1.0 + b) * x, -b * b * one], [x, b * one]], [-(1.0 + b) * one, one], x)


def adam_frozen_modes(x, p):
    """Frozen ZO-Adam: m' = β1m + (1−β1)g, θ' = θ − ηm'/P̃ (P̃ fixed); z = (θ, ηm/P̃), x = ημ, β1 = p.b1."""
    b = p.b1
    one = jnp.ones_like(x)
    a = 1.0 - b
    return _pair([[1.0 - a * x, -b * one], [a * x, b * one]], [-a * one, a * one], x)
