"""Mean-square linear stability of ZO-GD (two-point Gaussian estimator, n directions) on a quadratic.

Setting (Song, Zhang, Li, He, Muehlebach & Oh, 2026, "Zeroth-Order Optimization at the Edge of Stability",
arXiv:2604.14669; derivation below is ours, see docs/science_notes.md): near a minimum L(θ) = ½θᵀHθ, and the
central two-point estimate is exact on a quadratic, g = P H θ with P = (1/n) Σ_i u_i u_iᵀ, u_i ~ N(0, I). Then

    θ_{t+1} = (I − ηPH) θ_t,    E[P] = I,    E[P A P] = (1 + 1/n) A + (tr A / n) I   (A symmetric),

the last from E[u uᵀ A u uᵀ] = 2A + tr(A) I (Gaussian u). With Σ_t = E[θ_t θ_tᵀ]:

    Σ_{t+1} = Σ_t − η(HΣ_t + Σ_t H) + η² [(1 + 1/n) HΣ_tH + (1/n) tr(HΣ_tH) I].

In H's eigenbasis (eigenvalues λ_i), the diagonal s_i = (Σ_t)_ii evolves on its own (tr(HΣH) = Σ_j λ_j² s_j):

    s_{t+1} = M s_t,    M = diag((1 − ηλ_i)² + η²λ_i²/n) + (η²/n) 1 (λ²)ᵀ,    E‖θ_t‖² = 1ᵀ s_t.

M ≥ 0 entrywise; mean-square stable ⟺ ρ(M) < 1. For λ_i > 0 the Perron root solves the secular equation
1 = (η²/n) Σ_j λ_j² / (ρ − d_j) (d_j the diagonal), so ρ(M) < 1 ⟺ η < 2n/((n+1)λ_max) and

    φ(η) = (η/n) Σ_j λ_j / (2 − η(1 + 1/n) λ_j) < 1.

φ increases from 0 to ∞ on (0, 2n/((n+1)λ_max)), so the critical step η* is its unique root (bisection).
Bounds from λ_max and tr(H) only (PSD H): λ_j/2 ≤ λ_j/(2 − ηaλ_j) ≤ λ_j/(2 − ηaλ_max), a = 1 + 1/n, give

    2n / (tr H + (n+1) λ_max)  ≤  η*  ≤  min(2n / tr H, 2n / ((n+1) λ_max)),

within a factor 2 of each other; n → ∞ recovers GD's 2/λ_max.
Zero eigenvalues are neutral (d_j = 1) and feed nothing back (their column of M is (η²/n)·0), so they are left out:
stability is that of the curved subspace. A negative eigenvalue makes ZO-GD unstable at every η > 0.
"""
from __future__ import annotations

import numpy as np


def _eigs(eigs) -> np.ndarray:
    lam = np.asarray(eigs, np.float64).reshape(-1)
    if lam.size == 0 or not np.all(np.isfinite(lam)):
        raise ValueError("zo_stability: need a non-empty finite spectrum")
    return lam


def zo_ms_operator(eigs, lr: float, n: int) -> np.ndarray:
    """M [d, d] (float64): s_{t+1} = M s_t for s_i = E[(Qᵀθ_t)_i²], eigs: λ [d] of H = Q diag(λ) Qᵀ."""
    lam = _eigs(eigs)
    diag = (1.0 - lr * lam) ** 2 + lr ** 2 * lam ** 2 / n
    return np.diag(diag) + (lr ** 2 / n) * np.outer(np.ones_like(lam), lam ** 2)


def zo_ms_radius(eigs, lr: float, n: int) -> float:
    """ρ(M) on the non-flat eigenvalues (dense eigvals, O(d³)): the per-step growth factor of E‖θ‖²."""
    lam = _eigs(eigs)
    lam = lam[lam != 0]
    if lam.size == 0:
        return 1.0
    return float(np.max(np.abs(np.linalg.eigvals(zo_ms_operator(lam, lr, n)))))


def zo_stability_function(eigs, lr: float, n: int) -> float:
    """φ(η) = (η/n) Σ_{λ>0} λ/(2 − η(1+1/n)λ); +inf past 2n/((n+1)λ_max) or with a negative eigenvalue."""
    lam = _eigs(eigs)
    if np.any(lam < 0):
        return float("inf")
    lam = lam[lam > 0]
    denom = 2.0 - lr * (1.0 + 1.0 / n) * lam
    if np.any(denom <= 0):
        return float("inf")
    return float(lr / n * np.sum(lam / denom))


def zo_stable(eigs, lr: float, n: int, dense: bool = False) -> bool:
    """Mean-square stability of ZO-GD at step ``lr`` with n directions: φ(η) < 1 (or ρ(M) < 1 when ``dense``)."""
    if dense:
        if np.any(_eigs(eigs) < 0):
            return False
        return zo_ms_radius(eigs, lr, n) < 1.0
    return zo_stability_function(eigs, lr, n) < 1.0


def zo_critical_lr(eigs, n: int, rtol: float = 1e-12) -> float:
    """η*: the largest mean-square stable step (root of φ(η) = 1 by bisection); 0 with a negative eigenvalue."""
    lam = _eigs(eigs)
    if np.any(lam < 0):
        return 0.0
    lam = lam[lam > 0]
    if lam.size == 0:
        return float("inf")
    lo, hi = zo_critical_lr_bounds(lam.max(), lam.sum(), n)
    lo, hi = 0.5 * lo, hi * (1.0 + 1e-9)      # a strict bracket: φ(lo) < 1 ≤ φ(hi)
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if zo_stability_function(lam, mid, n) < 1.0 else (lo, mid)
    return 0.5 * (lo + hi)


def zo_critical_lr_bounds(lam_max: float, trace: float, n: int) -> tuple[float, float]:
    """(lower, upper) bounds on η* from λ_max and tr(H) of a PSD Hessian (see the module docstring)."""
    lam_max, trace = float(lam_max), float(trace)
    if lam_max <= 0 or trace < lam_max:
        raise ValueError(f"zo_critical_lr_bounds: need 0 < λ_max ≤ tr(H) (PSD), got {lam_max}, {trace}")
    lower = 2.0 * n / (trace + (n + 1) * lam_max)
    upper = min(2.0 * n / trace, 2.0 * n / ((n + 1) * lam_max))
    return lower, upper
