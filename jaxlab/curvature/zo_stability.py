"""Mean-square stability of zeroth-order (ZO) methods with the two-point Gaussian estimator, n directions.

Setting (Song, Zhang, Li, He, Muehlebach & Oh, 2026, "Zeroth-Order Optimization at the Edge of Stability",
arXiv:2604.14669, which treats ZO-GD, ZO-GDM and ZO-Adam; the general derivation below is ours): near a minimum
L(θ) = ½θᵀHθ the central two-point estimate is exact, g = PHθ with P = (1/n) Σ u_i u_iᵀ, u_i ~ N(0, I), so
g = Hθ + ξ with E[ξ] = 0 and Cov[ξ] = (1/n)(aaᵀ + ‖a‖² I), a = Hθ (from E[u uᵀ A u uᵀ] = 2A + tr(A) I).

Modes. In H's eigenbasis (λ_j, θ_j) a linear optimiser acts mode by mode; jaxlab.optim.zo_modes declares, per
method, ``mode_map(x, p) -> (B [k, k], c [k])`` with x = ηλ: z' = B(x) z + c·(ηξ_j), z[0] = θ_j. The noise
variance in mode j is (1/n)(λ_j²s_j + T), s_j = E[θ_j²], T = Σ_l λ_l² s_l. The diagonal blocks S_j = E[z_j z_jᵀ]
form a closed positive system (the a_j a_l cross terms only drive off-diagonal blocks, bounded by the diagonal):

    S_j' = B_j S_j B_jᵀ + (η²/n)(λ_j² s_j + T) ccᵀ.

Let G(x) = Σ_00 of the discrete Lyapunov solution Σ = BΣBᵀ + ccᵀ (the stationary variance of z[0] under unit noise;
finite iff ρ(B) < 1), q(x) = x²G(x)/n, f = q/(1 − q). Splitting the operator into its per-mode part L0 and the
rank-one coupling T, ρ(L) < 1 ⟺ ρ(L0) < 1 and ρ((I − L0)⁻¹L1) < 1 (positive operators), i.e.

    every B(x_j) stable,  every q(x_j) < 1,  and  Σ_j f(x_j) < 1.

(ρ(L0) < 1 ⟺ ρ(B) < 1 and q < 1; (I − L0)⁻¹ applied to the coupling gives λ_j² s_j = T f_j, summed: T = T Σ f.)
ZO-GD (B = 1 − x, c = −1): G = 1/(x(2 − x)), f = x/(2n − (n+1)x), so Σ f = (η/n) Σ λ/(2 − η(1+1/n)λ), the
classical secular function. Frozen ZO-Adam, θ' = θ − ηD m' with D = P̃⁻¹ diagonal and commuting with H: in the
shared eigenbasis mode j has x_j = ηd_jλ_j (an eigenvalue of ηP̃⁻¹H) and noise ηd_jξ_j, so the same algebra gives
λ_j²s_j(1 − q_j) = T q_j: the condition Σ f(x_j) = 1 holds unchanged (the d_j cancel), although the noise is
isotropic in parameter space. ``commutator_ratio`` measures how far P̃ is from commuting with H.

Positive curvature only. Modes with λ ≤ 0 are left out: a negative direction grows for every η (B(x < 0) is
unstable for all declared maps), so keeping it would give η* = 0 on every real network (at initialisation about
40% of the Hessian's eigenvalues are negative); like GD's 2/λ1, the edge of stability concerns the oscillating
positive-curvature directions. Zero modes are neutral and feed nothing back (f(0) = 0).

Numerics. B is affine in x (x enters only through η·g). B(0) has the simple eigenvalue 1 (θ is neutral), so
I − B⊗B is singular at x = 0 and ill-conditioned for small x; ``_scaled_gain`` deflates that direction with a
bordered system and returns x·G(x), accurate down to and including x = 0 (where it gives f'(0)·n).
Bounds (critical_lr_bounds): if h = f(x)/x is non-decreasing (sgd, heavy ball, frozen Adam; checked in the
tests), Σ_j f(ηλ_j) lies between max(f(ηλ1), η·tr₊·f'(0)) and η·tr₊·h(ηλ1) (tr₊ = Σ max(λ, 0)), which brackets η*.
For Nesterov with β ≳ 0.65, x·G(x) first decreases (to 0.47 of its value at 0 when β = 0.9), so h dips; the
bounds then use h's endpoints and minimum, valid for quasi-convex h (also checked). q(x) is increasing for every declared map, so Σ f increases in η.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.curvature import linalg
from jaxlab.tree import tree_rademacher, tree_vdot

_GRID = (-8, 41)   # deterministic_limit searches x = 2^k, k in [-8, 40], for the first unstable B(x)


def _stable(mode_map: Callable, x, p):
    """ρ(B(x)) < 1 for a scalar x ≳ 2^-8: X = BXBᵀ + I has a positive definite solution iff B is stable."""
    B, _ = mode_map(x, p)
    k = B.shape[0]
    X = linalg.solve(jnp.eye(k * k, dtype=B.dtype) - jnp.kron(B, B), jnp.eye(k, dtype=B.dtype).reshape(-1))
    X = X.reshape(k, k)
    return jnp.all(jnp.isfinite(X)) & (linalg.eigvalsh(0.5 * (X + X.T))[0] > 0)


def _scaled_gain(mode_map: Callable, x, p):
    """x·G(x) for a scalar x ≥ 0 (finite at 0): Σ = BΣBᵀ + ccᵀ solved with the neutral direction r⊗r deflated.

    With r, l the right/left null vectors of B(0) − I and vec Σ = (α/x) r⊗r + w, (l⊗l)ᵀw = 0, the system
    [[I − B⊗B, −b], [(l⊗l)ᵀ, 0]] [w; α] = [c⊗c; 0], b = ((Br)⊗(Br) − r⊗r)/x (exact: B affine), is regular at x = 0.
    """
    B, c = mode_map(x, p)
    k = B.shape[0]
    B0, _ = mode_map(jnp.zeros_like(x), p)
    B1 = jax.jacfwd(lambda t: mode_map(t, p)[0])(x)                   # dB/dx, constant for affine B
    U, _, Vh = linalg.svd(B0 - jnp.eye(k, dtype=B.dtype))
    r, l = Vh[-1], U[:, -1]
    s = B1 @ r
    b = jnp.kron(s, r) + jnp.kron(r, s) + x * jnp.kron(s, s)
    top = jnp.concatenate([jnp.eye(k * k, dtype=B.dtype) - jnp.kron(B, B), -b[:, None]], axis=1)
    bottom = jnp.concatenate([jnp.kron(l, l), jnp.zeros((1,), B.dtype)])[None]
    sol = linalg.solve(jnp.concatenate([top, bottom]), jnp.concatenate([jnp.kron(c, c), jnp.zeros(1, B.dtype)]))
    return sol[-1] * r[0] ** 2 + x * sol[0]


def deterministic_limit(mode_map: Callable, p=None, iters: int = 60):
    """x_det: B(x) is stable on (0, x_det) (the noise-free edge, e.g. 2 for GD); inf if stable up to 2^40.

    Assumes the stable set is an interval starting at 0 (true for every map in jaxlab.optim.zo_modes).
    Returns a scalar in the default float dtype; jittable (p may be traced).
    """
    xs = 2.0 ** jnp.arange(*_GRID, dtype=jnp.result_type(float))
    ok = jax.vmap(lambda x: _stable(mode_map, x, p))(xs)
    first = jnp.argmin(ok)                                             # first unstable grid point
    lo0 = jnp.where(first > 0, xs[jnp.maximum(first - 1, 0)], 0.0)

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        good = _stable(mode_map, mid, p)
        return jnp.where(good, mid, lo), jnp.where(good, hi, mid)

    lo, _ = jax.lax.fori_loop(0, iters, body, (lo0, xs[first]))
    return jnp.where(jnp.all(ok), jnp.inf, lo)


def mode_gain(mode_map: Callable, x, p=None, x_max=None):
    """G(x): stationary variance of z[0] under z' = B(x)z + cζ, Var ζ = 1; inf outside (0, x_max) (B unstable).

    x: array of any shape; x_max: deterministic_limit(mode_map, p) (computed when None). Same shape as x.
    """
    x = jnp.asarray(x, jnp.result_type(float))
    x_max = deterministic_limit(mode_map, p) if x_max is None else x_max
    ok = (x > 0) & (x < x_max)
    xs = jnp.where(ok, x, 0.0).reshape(-1)
    xg = jax.vmap(lambda t: _scaled_gain(mode_map, t, p))(xs).reshape(x.shape)
    return jnp.where(ok, xg / jnp.where(ok, x, 1.0), jnp.inf)


def mode_f(mode_map: Callable, x, n, p=None, x_max=None):
    """f(x) = q/(1 − q), q = x²G(x)/n: a mode's share of the secular sum. 0 for x ≤ 0 (left out), inf where the
    mode alone is unstable (x ≥ x_max or q ≥ 1). x: any shape; n: number of directions."""
    x = jnp.asarray(x, jnp.result_type(float))
    x_max = deterministic_limit(mode_map, p) if x_max is None else x_max
    ok = (x > 0) & (x < x_max)
    xs = jnp.where(ok, x, 0.0).reshape(-1)
    q = xs * jax.vmap(lambda t: _scaled_gain(mode_map, t, p))(xs) / n
    q = q.reshape(x.shape)
    f = jnp.where(q < 1, q / jnp.where(q < 1, 1.0 - q, 1.0), jnp.inf)
    return jnp.where(x <= 0, 0.0, jnp.where(ok, f, jnp.inf))


def secular(eigs, lr, n, mode_map: Callable, p=None, x_max=None):
    """Σ_{λ_j > 0} f(ηλ_j): mean-square stable ⟺ < 1. eigs: [d] (H's, or P̃⁻¹H's for frozen Adam); lr: η."""
    return jnp.sum(mode_f(mode_map, lr * jnp.ravel(eigs), n, p, x_max))


def critical_lr(eigs, n, mode_map: Callable, p=None, iters: int = 60):
    """η*: the largest mean-square stable step, root of secular(η) = 1 by bisection on (0, x_det/λ1).

    eigs: [d] spectrum (non-positive entries left out); n: directions (int, may be traced); p: the map's numbers.
    Returns the stable end of the final bracket (relative width 2^-iters); inf when no eigenvalue is positive.
    Jittable: mode_map is a Python callable (static), eigs, n and p's numbers may be traced.
    """
    lam = jnp.ravel(jnp.asarray(eigs, jnp.result_type(float)))
    lam1 = jnp.max(lam)
    x_max = jnp.minimum(deterministic_limit(mode_map, p), 2.0 ** _GRID[1])   # a finite bracket for any map

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        good = secular(lam, mid, n, mode_map, p, x_max) < 1.0
        return jnp.where(good, mid, lo), jnp.where(good, hi, mid)

    hi0 = jnp.where(lam1 > 0, x_max / jnp.where(lam1 > 0, lam1, 1.0), 1.0)
    lo, _ = jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(hi0), hi0))
    return jnp.where(lam1 > 0, lo, jnp.inf)


def critical_lr_bounds(lam_max, trace_pos, n, mode_map: Callable, p=None, iters: int = 60):
    """(lower, upper) bounds on η* from λ1 and tr₊ = Σ max(λ, 0) only; valid when h(x) = f(x)/x is quasi-convex
    (non-increasing then non-decreasing) on the stable range, checked in the tests for every declared map.

    With x_j = ηλ_j ≤ ηλ1: η tr₊ min_{(0,ηλ1]} h ≤ Σ f(x_j) ≤ η tr₊ max(h(0), h(ηλ1)), and Σ f ≥ f(ηλ1). Hence
    lower = min(x_r/λ1, 1/(tr₊ h(0))) with f(x_r) = λ1/tr₊, h(0) = f'(0); upper = min(x_1/λ1, η_L) with f(x_1) = 1
    and η_L = x_r/λ1 if x_r ≤ x_m else 1/(tr₊ h(x_m)), x_m = argmin h. For non-decreasing h (sgd, heavy ball,
    frozen Adam) x_m = 0: x_r/λ1 ≤ η* ≤ min(x_1/λ1, 1/(tr₊ f'(0))); ZO-GD: 2n/(tr₊ + (n+1)λ1) ≤ η* ≤
    min(2n/((n+2)λ1), 2n/tr₊). tr₊ below λ1 (a noisy estimate) is raised to λ1. (inf, inf) when λ1 ≤ 0.
    """
    dtype = jnp.result_type(float)
    lam1, tr = jnp.asarray(lam_max, dtype), jnp.asarray(trace_pos, dtype)
    pos = lam1 > 0
    lam1 = jnp.where(pos, lam1, 1.0)
    tr = jnp.maximum(tr, lam1)
    x_max = jnp.minimum(deterministic_limit(mode_map, p), 2.0 ** _GRID[1])
    f = lambda x: mode_f(mode_map, x, n, p, x_max)                     # noqa: E731
    h0 = _scaled_gain(mode_map, jnp.zeros((), dtype), p) / n           # h(0) = f'(0) = lim q/x

    def root(level):                                                   # f(x) = level; f is increasing (q is)
        def body(_, lohi):
            mid = 0.5 * (lohi[0] + lohi[1])
            good = f(mid) < level
            return jnp.where(good, mid, lohi[0]), jnp.where(good, lohi[1], mid)
        return jax.lax.fori_loop(0, iters, body, (jnp.zeros((), dtype), x_max))

    def golden(_, ab):                                                 # argmin of the quasi-convex h (inf past x_1)
        a, b = ab
        c, d = b - 0.618033988749895 * (b - a), a + 0.618033988749895 * (b - a)
        left = f(c) / c <= f(d) / d                                    # ties (both inf) move left
        return jnp.where(left, a, c), jnp.where(left, d, b)

    a, b = jax.lax.fori_loop(0, 2 * iters, golden, (jnp.zeros((), dtype), x_max))
    x_m = 0.5 * (a + b)
    h_m = jnp.where(x_m > 0, jnp.minimum(h0, f(x_m) / jnp.where(x_m > 0, x_m, 1.0)), h0)
    r_lo, r_hi = root(lam1 / tr)
    lower = jnp.minimum(r_lo / lam1, 1.0 / (tr * h0))                  # the outer ends of the final brackets
    eta_l = jnp.where(r_hi <= x_m, r_hi / lam1, 1.0 / (tr * h_m))
    upper = jnp.minimum(root(1.0)[1] / lam1, eta_l)
    return jnp.where(pos, lower, jnp.inf), jnp.where(pos, upper, jnp.inf)


def commutator_ratio(matvec: Callable, P, params, key: jax.Array, num_samples: int):
    """Hutchinson estimate [] of ‖PH − HP‖_F / ‖PH‖_F (0 iff the diagonal P commutes with H).

    matvec: v -> Hv on pytrees like params; P: positive pytree like params (a diagonal preconditioner, e.g. Adam's
    P̃; P and P⁻¹ commute with H together). ‖A‖_F² = E‖Az‖² for Rademacher z: two matvecs per probe, the ratio of
    the two sample means (consistent; relative error ~ 1/√num_samples). Frozen ZO-Adam's mode analysis needs a
    small ratio: on a 6-dim quadratic with ratio 0.45 the mode prediction of η* is 24% high (Monte Carlo, in
    tests/curvature/test_zo_stability.py).
    """
    scale = lambda v: jax.tree.map(lambda a, b: a * b, P, v)           # noqa: E731

    def one(k):
        z = tree_rademacher(k, params)
        phz = scale(matvec(z))
        diff = jax.tree.map(lambda a, b: a - b, phz, matvec(scale(z)))
        return tree_vdot(diff, diff), tree_vdot(phz, phz)

    num, den = jax.lax.map(one, jax.random.split(key, num_samples))
    return jnp.sqrt(jnp.mean(num) / jnp.mean(den))
