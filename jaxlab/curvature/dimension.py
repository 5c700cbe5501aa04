"""Sharpness dimension: the Kaplan–Yorke (Lyapunov) dimension of an optimiser's step map.

Tuci, Korkmaz, Şimşekli & Birdal (2026), "Generalization at the Edge of Stability", arXiv:2604.19740, Def. 4.2:
the optimiser is a random dynamical system θ_{t+1} = F(θ_t, ω_t) (ω: the minibatch, the ZO directions); its
"sharpness exponents" are the expected log singular values of the one-step Jacobian, ℓ_i = E_ω[log σ_i(J_ω)],
ordered descending, and the sharpness dimension is their Kaplan–Yorke form

    S_j = Σ_{i≤j} ℓ_i,   k = max{j : S_j ≥ 0}   (S is concave in j: {j : S_j ≥ 0} is a prefix),
    D = 0 if ℓ_1 < 0;   D = n if S_n ≥ 0;   else D = k + S_k / |ℓ_{k+1}|.

jaxlab's choices: J is the Jacobian of one *real* step on the whole training state (parameters and the
optimiser's floating state: momentum, Adam's moments), so n is that state's dimension; the expectation is a
mean over sampled maps (jaxlab.curvature.step_quantities). For GD, J = I − ηH and σ_i = |1 − ηλ_i|.

From the top-k exponents alone D is decided only when the partial sums turn negative within them (then k and
ℓ_{k+1} are both known) or ℓ_1 < 0; otherwise the unmeasured bulk decides it and :func:`kaplan_yorke_dimension`
returns NaN with ``determined = False`` rather than a number that depends on a guess.

For a model too large for any of that, :func:`gd_exponent_quantiles` fills the whole spectrum from a spectral
density: GD's exponents log|1 − ηλ| pushed through the SLQ quadrature measure of H (nodes θ, weights w), read off
at the n quantile levels (i − ½)/n. With every exponent known, D is always decided; its error is SLQ's.
"""
from __future__ import annotations

import jax.numpy as jnp


def gd_exponents(eigvals, lr) -> jnp.ndarray:
    """ℓ_i = log|1 − η λ_i| for Hessian eigenvalues [d], sorted descending: GD's exponents [d] (a closed form
    for tests and notes)."""
    lam = jnp.asarray(eigvals)
    return -jnp.sort(-jnp.log(jnp.abs(1.0 - lr * lam)))


def kaplan_yorke_dimension(exponents, dim: int | None = None):
    """(D, determined) from the top exponents [k] (any order) of an n-dimensional map (n = ``dim``, default k).

    D is exact when ``determined``; NaN otherwise (every partial sum of the top k is ≥ 0 and k < n, so the
    unmeasured exponents decide D). Jittable; −inf exponents (singular values 0) are allowed.
    """
    ell = -jnp.sort(-jnp.asarray(exponents))
    k = ell.shape[0]
    n = k if dim is None else int(dim)
    if n < k:
        raise ValueError(f"kaplan_yorke_dimension: dim={n} is smaller than the {k} exponents given")
    partial = jnp.cumsum(ell)                               # S_1..S_k
    j = jnp.sum(partial >= 0)                               # a prefix (S concave)
    s_j = jnp.where(j > 0, partial[jnp.maximum(j - 1, 0)], 0.0)
    nxt = ell[jnp.minimum(j, k - 1)]                        # ℓ_{j+1}, known when j < k
    frac = jnp.where(j < k, s_j / jnp.abs(nxt), 0.0)        # |−inf| → fraction 0
    complete = (j < k) | (k == n)
    return jnp.where(complete, j + frac, jnp.nan), complete


def quantile_exponents(values, weights, n: int) -> jnp.ndarray:
    """n values [n] (descending) of the discrete measure Σ_j w_j δ(values_j) at the quantile levels (i − ½)/n.

    values, weights: any equal shapes (e.g. SLQ's [P, m]); weights ≥ 0, normalised here. Each atom sits at the
    centre of its mass on the level axis and the quantile function is linear between atoms, so n equal atoms of
    weight 1/n come back exactly. Jittable (n static).
    """
    v = jnp.ravel(jnp.asarray(values))
    w = jnp.ravel(jnp.asarray(weights)).astype(v.dtype)
    order = jnp.argsort(-v)
    v, w = v[order], w[order]
    w = w / jnp.sum(w)
    centre = jnp.cumsum(w) - 0.5 * w                      # nondecreasing: where each atom's mass sits
    levels = (jnp.arange(n, dtype=v.dtype) + 0.5) / n
    return jnp.interp(levels, centre, v)                  # clamped to the end atoms outside their centres


def gd_exponent_quantiles(nodes, weights, lr, n: int) -> jnp.ndarray:
    """GD's exponents log|1 − η θ| [n] (descending) from SLQ nodes/weights [P, m] of the operator J = I − ηA
    describes (A = H, or H + λM with SGD's weight decay): the n-quantiles of the pushed-forward measure.

    Exact when the nodes are A's n eigenvalues with equal weights; in general the error is the quadrature's.
    An exponent at θ = 1/η exactly (σ = 0) is clipped to log(tiny) instead of −inf, so interpolation stays finite.
    """
    nodes = jnp.asarray(nodes)
    tiny = jnp.finfo(nodes.dtype).tiny
    ell = jnp.log(jnp.maximum(jnp.abs(1.0 - lr * nodes), tiny))
    return quantile_exponents(ell, weights, n)
