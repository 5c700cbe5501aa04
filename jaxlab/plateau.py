"""Has a curve stopped changing? An equivalence test with power, host-side numpy/scipy.

    r = plateau_test(steps, ratio, frac=0.5, tolerance=0.05)   # {"plateaued", "verdict", "change", "change_ci", ...}
    n = min_points_for_power(noise_sd=0.04, tolerance=0.05)    # measurements over the run a flat curve needs

A test that calls a curve flat whenever its slope is not significantly nonzero rewards having few, noisy points.
Here flatness must be *established*: the change over the window must be shown to be smaller than a tolerance.

Design (a TOST equivalence test on the change over the window):
  1. Window: the points with step >= end - frac·(end - start), start/end the first/last finite step given (so a
     run that diverged, with NaN values at the end, keeps its window and loses points). Only finite values count.
  2. Ordinary least-squares line through the window's n points; Δ = slope × (last - first step of those points),
     the fitted change across the window; relative=True divides Δ (and its CI) by |mean value in the window|.
  3. SE of Δ: Newey–West (Bartlett kernel, lag L = floor(4 (n/100)^(2/9))), robust to the autocorrelation of
     edge-of-stability oscillations, rescaled to be exactly unbiased for white noise at this n, with Satterthwaite
     degrees of freedom ν for its Student-t critical values (see slope_se_hac: plain Newey–West with n - 2 dof is
     18% low at n = 20 and finds a nonzero slope in white noise 12% of the time at a nominal 5%).
  4. CI = Δ ± t_{ν,1-α} SE, the (1 - 2α) interval (90% for α = 0.05): "plateaued" iff it lies inside
     (-tolerance, tolerance), which is TOST at level α (at |Δ| = tolerance it passes with probability ≈ α).
  5. Sign: |Δ| > t_{ν,1-α/2} SE, a two-sided test at α (so a flat curve is called drifting ≈ α of the time).

Verdicts (exactly one):
  "plateaued"  the (1 - 2α) CI lies inside ±tolerance: the change is shown to be small.
  "drifting"   not plateaued and the change is significantly nonzero (step 5): beyond or straddling the tolerance.
  "undecided"  neither: too few points or too much noise for either claim; also with fewer than MIN_POINTS finite
               points in the window, or (relative) a window mean of 0.
``trend`` is "rising"/"falling" when the sign test of step 5 passes (a plateaued curve may still move measurably
within the tolerance), else "none".

Known limits: with tens of points Newey–West sees only part of a positive autocorrelation, so the test is liberal
there (AR(1) ρ = 0.5, 40 points: a change of exactly the tolerance passes 8.5% of the time instead of 5%; flat
curves are called drifting 16% of the time at 20 points); the relative CI ignores the uncertainty of the window
mean (noise 0.04 on a level of 1 over 20 points: ~1% of Δ).
"""
from __future__ import annotations

import math

import numpy as np

MIN_POINTS = 6
VERDICTS = ("plateaued", "drifting", "undecided")


def newey_west_lag(n: int) -> int:
    """Bartlett lag for n points: floor(4 (n/100)^(2/9)) (Newey & West 1994's rule of thumb), at most n - 2."""
    return int(max(0, min(n - 2, math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)))))


def _bartlett_apply(a: np.ndarray, lag: int, v: np.ndarray) -> np.ndarray:
    """A v for A = diag(a) K diag(a), K the banded Toeplitz Bartlett matrix (K_l = 1 - |l|/(L+1), |l| <= L).

    a [n], v [n] or [n, c] -> [n] or [n, c]; O(n L), so windows of thousands of points stay cheap."""
    w = a.reshape(a.shape + (1,) * (v.ndim - 1)) * v
    out = w.copy()
    for l in range(1, lag + 1):
        k = 1.0 - l / (lag + 1.0)
        out[l:] += k * w[:-l]
        out[:-l] += k * w[l:]
    return a.reshape(w.shape[:1] + (1,) * (v.ndim - 1)) * out


def slope_se_hac(s: np.ndarray, resid: np.ndarray, lag: int) -> tuple[float, float]:
    """Newey–West standard error of an OLS slope, bias-corrected for small samples, and its Satterthwaite dof.

    s [n]: regressor (with an intercept in the fit); resid [n]: OLS residuals e in order; lag: Bartlett lag L.
    The Newey–West variance is eᵀAe / Sxx², A = diag(a) K diag(a), a = s - s̄. Its residuals are correlated by the
    fit (e = M ε, M = I - P with P the projection on [1, s]), which biases it low by ~(1 + 2.8 L)/n relative:
    −18% in SE at n = 20, L = 2. As Imbens & Kolesár (2016) do for cluster-robust SEs, it is rescaled to be
    unbiased for white noise: V = eᵀAe / tr(MAM) / Sxx (tr(MAM) → Sxx as n grows, so it stays consistent under
    autocorrelation), and its randomness is carried by ν = tr(MAM)² / tr((MAM)²) degrees of freedom
    (Satterthwaite; exact moments for Gaussian white noise). Returns (SE of the slope, ν).
    """
    n = s.size
    a = s - s.mean()
    sxx = a @ a
    q, _ = np.linalg.qr(np.stack([np.ones(n), s], axis=1))          # [n, 2] orthonormal basis of the fit
    aq = _bartlett_apply(a, lag, q)                                   # A Q
    qaq = q.T @ aq
    a2 = a * a
    tr_a = sxx                                                        # K_0 = 1
    tr_a2 = a2 @ a2 + 2.0 * sum((1.0 - l / (lag + 1.0)) ** 2 * (a2[l:] @ a2[:-l]) for l in range(1, lag + 1))
    tr_b = tr_a - np.trace(qaq)                                       # tr(MAM) = tr(AM)
    tr_b2 = tr_a2 - 2.0 * np.sum(aq * aq) + np.sum(qaq * qaq)        # tr(AMAM)
    quad = resid @ _bartlett_apply(a, lag, resid)
    return math.sqrt(max(quad, 0.0) / tr_b / sxx), float(tr_b ** 2 / tr_b2)


def _undecided(out: dict) -> dict:
    return {**out, "plateaued": False, "verdict": "undecided", "trend": "none", "change": None,
            "change_ci": [None, None], "change_se": None, "slope_per_1k": None}


def plateau_test(steps, values, *, frac: float = 0.5, tolerance: float = 0.05, alpha: float = 0.05,
                 relative: bool = True) -> dict:
    """Equivalence test that ``values`` changed by less than ``tolerance`` over the last ``frac`` of ``steps``.

    steps [m], values [m]: a curve (any order; sorted here); NaN/inf values are dropped. frac in (0, 1]: window
    share of the step range. tolerance > 0: largest change that counts as flat (a fraction of the window's mean
    level when relative, else in the values' units). alpha: TOST level (the CI is the 1 - 2α interval).
    Returns a dict of JSON-friendly values: plateaued (bool), verdict ("plateaued" | "drifting" | "undecided"),
    trend ("rising" | "falling" | "none"), change (Δ, relative or absolute, or None), change_ci ([lo, hi]),
    change_se, slope_per_1k (absolute units per 1000 steps), level (window mean), num_points (finite points in
    the window), window ([first, last] step of those points, or None), lag (Newey–West L), dof (ν), tolerance,
    relative, alpha. Undecided for lack of points: change, change_ci entries, change_se, slope_per_1k are None.
    See the module docstring for the method.
    """
    if not 0 < frac <= 1 or not tolerance > 0 or not 0 < alpha < 0.5:
        raise ValueError(f"plateau_test: need 0 < frac <= 1, tolerance > 0, 0 < alpha < 0.5; got {frac}, "
                         f"{tolerance}, {alpha}")
    steps, values = np.asarray(steps, np.float64).reshape(-1), np.asarray(values, np.float64).reshape(-1)
    if steps.shape != values.shape:
        raise ValueError(f"plateau_test: steps {steps.shape} and values {values.shape} differ in shape")
    out = {"tolerance": float(tolerance), "relative": bool(relative), "alpha": float(alpha), "num_points": 0,
           "window": None, "level": None, "lag": None, "dof": None}
    finite_step = np.isfinite(steps)
    steps, values = steps[finite_step], values[finite_step]
    if steps.size == 0:
        return _undecided(out)
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    keep = (steps >= steps[-1] - frac * (steps[-1] - steps[0])) & np.isfinite(values)
    x, y = steps[keep], values[keep]
    out["num_points"] = int(x.size)
    if x.size:
        out["window"] = [float(x[0]), float(x[-1])]
        out["level"] = float(y.mean())
    if x.size < MIN_POINTS or x[-1] == x[0]:
        return _undecided(out)
    span = x[-1] - x[0]
    s = (x - x[0]) / span                          # window mapped to [0, 1]: the slope is Δ directly
    slope, intercept = np.polyfit(s, y, 1)
    lag = newey_west_lag(x.size)
    se, dof = slope_se_hac(s, y - (slope * s + intercept), lag)
    out.update(lag=lag, dof=dof)
    scale = 1.0
    if relative:
        if not abs(out["level"]) > 0:
            return _undecided(out)
        scale = 1.0 / abs(out["level"])
    change, se = slope * scale, se * scale
    from scipy.stats import t as student_t  # here, not at the top: scipy.stats costs every CLI start ~0.7 s

    half = float(student_t.ppf(1.0 - alpha, dof)) * se
    lo, hi = change - half, change + half
    # The sign is tested two-sided at α (not with the 90% CI), so a flat curve is called drifting ≈ α of the time.
    signif = abs(change) > float(student_t.ppf(1.0 - alpha / 2.0, dof)) * se
    if -tolerance < lo and hi < tolerance:
        verdict = "plateaued"
    elif signif:
        verdict = "drifting"
    else:
        verdict = "undecided"
    out.update(plateaued=verdict == "plateaued", verdict=verdict,
               trend="none" if not signif else "rising" if change > 0 else "falling",
               change=float(change), change_ci=[float(lo), float(hi)], change_se=float(se),
               slope_per_1k=float(slope / span * 1000.0))
    return out


def change_se_white(n: int, noise_sd: float) -> float:
    """SE of the OLS change Δ across n equally spaced points with iid noise sd: sd·sqrt(12 (n-1) / (n (n+1)))."""
    return noise_sd * math.sqrt(12.0 * (n - 1) / (n * (n + 1)))


def window_points(num_points: int, frac: float) -> int:
    """Points plateau_test's window holds for ``num_points`` equally spaced measurements: floor(frac (m-1)) + 1."""
    return int(math.floor(frac * (num_points - 1) + 1e-9)) + 1


def flat_pass_probability(n: int, noise_sd: float, tol: float, alpha: float = 0.05) -> float:
    """Probability that a flat curve with Gaussian white noise passes the equivalence test (absolute tolerance).

    n: window points (equally spaced); noise_sd, tol: in the values' units. Δ̂ ~ N(0, SE²) with SE from
    change_se_white, and the estimated SE² ~ SE² χ²_ν/ν independent of it (ν the test's Satterthwaite dof; OLS
    residuals are independent of the slope), so P = E_V[2Φ(tol/SE - t_{ν,1-α} √V) - 1]⁺, here averaged over
    400 quantiles of V.
    """
    se = change_se_white(n, noise_sd)
    if se == 0:
        return 1.0
    from scipy.stats import chi2, norm, t as student_t

    dof = slope_se_hac(np.linspace(0.0, 1.0, n), np.zeros(n), newey_west_lag(n))[1]   # the test's own ν
    v = chi2.ppf((np.arange(400) + 0.5) / 400, dof) / dof
    return float(np.mean(np.maximum(2.0 * norm.cdf(tol / se - student_t.ppf(1.0 - alpha, dof) * np.sqrt(v)) - 1.0,
                                    0.0)))


def min_points_for_power(noise_sd: float, tolerance: float, *, frac: float = 0.5, alpha: float = 0.05,
                         power: float = 0.95, level: float = 1.0, relative: bool = True, rho: float = 0.0,
                         max_points: int = 100_000) -> int:
    """Fewest equally spaced measurements over a run for a flat curve to pass plateau_test with ``power``.

    noise_sd: sd of the measurement noise; tolerance, frac, alpha, relative: as passed to plateau_test; level: the
    curve's value (relative tolerances are fractions of it); rho: lag-1 autocorrelation of AR(1) noise between
    consecutive measurements (0: white), folded in as the long-run variance factor (1+ρ)/(1-ρ) on noise_sd².
    Returns the smallest m whose window (window_points(m, frac) ≥ MIN_POINTS) gives flat_pass_probability ≥
    power. Exact for white Gaussian noise up to the Satterthwaite approximation; for AR(1) noise it overstates
    the test's variance (Newey–West underestimates it), so m errs on the large side. Raises ValueError beyond
    ``max_points``. Choose ``curvature.every`` ≤ run steps / (m - 1).
    """
    if not (noise_sd >= 0 and tolerance > 0 and 0 < frac <= 1 and 0 < power < 1 and -1 < rho < 1):
        raise ValueError("min_points_for_power: need noise_sd >= 0, tolerance > 0, 0 < frac <= 1, "
                         "0 < power < 1, -1 < rho < 1")
    tol = tolerance * abs(level) if relative else tolerance
    sd = noise_sd * math.sqrt((1.0 + rho) / (1.0 - rho))

    def passes(n: int) -> bool:
        return flat_pass_probability(n, sd, tol, alpha) >= power

    n = MIN_POINTS
    while not passes(n):                              # window points: double, then bisect (P rises with n)
        n *= 2
        if n > max_points:
            raise ValueError(f"min_points_for_power: more than {max_points} points needed")
    lo = max(MIN_POINTS, n // 2)
    while lo < n:
        mid = (lo + n) // 2
        lo, n = (lo, mid) if passes(mid) else (mid + 1, n)
    m = max(MIN_POINTS, int(math.ceil((n - 1) / frac)) + 1)
    while window_points(m, frac) < n:                 # floor rounding can leave the window one short
        m += 1
    return m
