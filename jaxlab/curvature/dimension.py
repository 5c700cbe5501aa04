"""Sharpness dimension: a Lyapunov (Kaplan–Yorke) dimension of the GD map from the Hessian spectrum.

Tuci, Korkmaz, Şimşekli & Birdal (2026), "Generalization at the Edge of Stability", arXiv:2604.19740, define the
sharpness dimension (SD) from the ordered "sharpness exponents" — logs of the singular values of the one-step
update map's Jacobian — with a critical index k (the last ordered partial sum that is ≥ 0) and a fractional part,
in the manner of the Kaplan–Yorke dimension. The stored copies of the paper we could search did not render its
formulas, so we implement the classical Kaplan–Yorke form at one point, which is what that description reduces to:

    GD: θ ← θ − η∇L(θ),  Jacobian J = I − ηH (symmetric),  singular values σ_i = |1 − ηλ_i|,
    exponents ℓ_i = log|1 − ηλ_i| sorted descending,  S_j = Σ_{i≤j} ℓ_i,
    k = max{j : S_j ≥ 0}  (S is concave in j, so {j : S_j ≥ 0} is a prefix),
    D = 0 if ℓ_1 < 0;  D = d if S_d ≥ 0;  else  D = k + S_k / |ℓ_{k+1}|.

An eigenvalue past the GD threshold (λ > 2/η) expands (ℓ > 0); near-zero eigenvalues are nearly neutral (ℓ ≈ −ηλ),
so the bulk of the spectrum matters as much as its top. From top-k Lanczos eigenvalues the d − k unmeasured ones
must be supplied (``bulk``):

    "smallest"  every unmeasured eigenvalue = the smallest measured one (contracting like it). If the true bulk
                lies in [0, λ_min measured] and η·λ_min measured ≤ 1, each true exponent is ≥ the assumed one and D
                is monotone in the exponents, so this is a LOWER bound on D.
    "zero"      unmeasured eigenvalues = 0 (neutral, ℓ = 0): an UPPER bound when the bulk lies in [0, 2/η].
    array       explicit estimates of the d − k unmeasured eigenvalues (e.g. quantiles of an SLQ density).
"""
from __future__ import annotations

import jax.numpy as jnp


def lyapunov_exponents(eigvals, lr) -> jnp.ndarray:
    """ℓ_i = log|1 − η λ_i| for eigvals [d], sorted descending: [d] (−inf where ηλ_i = 1 exactly)."""
    lam = jnp.asarray(eigvals)
    return -jnp.sort(-jnp.log(jnp.abs(1.0 - lr * lam)))


def kaplan_yorke_dimension(exponents) -> jnp.ndarray:
    """D from exponents [d] (any order): k + S_k/|ℓ_{k+1}| with k the last index with S_k ≥ 0 (jittable)."""
    ell = -jnp.sort(-jnp.asarray(exponents))
    d = ell.shape[0]
    partial = jnp.cumsum(ell)                               # S_1..S_d
    k = jnp.sum(partial >= 0)                               # a prefix (S concave): k = |{j : S_j ≥ 0}|
    s_k = jnp.where(k > 0, partial[jnp.maximum(k - 1, 0)], 0.0)
    nxt = ell[jnp.minimum(k, d - 1)]                        # ℓ_{k+1} (< 0 whenever k < d)
    frac = jnp.where(k < d, s_k / jnp.abs(nxt), 0.0)        # |−inf| → fraction 0
    return k + frac


def sharpness_dimension(eigvals, lr, dim: int | None = None, bulk="smallest") -> jnp.ndarray:
    """Kaplan–Yorke dimension of the GD map θ ↦ θ − lr·∇L at a point with Hessian eigenvalues ``eigvals``.

    eigvals: [k] measured eigenvalues (e.g. top-k Lanczos; any order) or the full spectrum [d] when dim is None.
    lr: step size η (may be traced). dim: the number of parameters d ≥ k; the d − k unmeasured eigenvalues come
    from ``bulk`` ("smallest" | "zero" | array [d − k]; see the module docstring). Returns a scalar in [0, d].
    """
    lam = jnp.asarray(eigvals)
    k = lam.shape[0]
    d = k if dim is None else int(dim)
    if d < k:
        raise ValueError(f"sharpness_dimension: dim={d} is smaller than the {k} eigenvalues given")
    if d > k:
        if isinstance(bulk, str):
            if bulk not in ("smallest", "zero"):
                raise ValueError(f"sharpness_dimension: bulk={bulk!r}: 'smallest', 'zero' or an array")
            fill = jnp.min(lam) if bulk == "smallest" else jnp.zeros((), lam.dtype)
            rest = jnp.full((d - k,), fill, lam.dtype)
        else:
            rest = jnp.asarray(bulk, lam.dtype).reshape(-1)
            if rest.shape[0] != d - k:
                raise ValueError(f"sharpness_dimension: bulk has {rest.shape[0]} values, need dim − k = {d - k}")
        lam = jnp.concatenate([lam, rest])
    return kaplan_yorke_dimension(lyapunov_exponents(lam, lr))
