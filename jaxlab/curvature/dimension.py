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
