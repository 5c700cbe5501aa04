"""Kaplan–Yorke dimension (jaxlab.curvature.dimension) against an independent numpy loop: closed-form cases, GD's
full spectrum on the dense float64 Hessian of the tiny MLP, and what a top-k truncation can and cannot decide."""
import jax
import numpy as np
import pytest

from curvature_testing import reference_dimension

from jaxlab.curvature.dimension import gd_exponents, kaplan_yorke_dimension


def _log_abs(x):
    with np.errstate(divide="ignore"):                 # ηλ = 1 exactly: ℓ = −inf (a collapsed direction)
        return np.log(np.abs(x))


def test_closed_form_cases():
    for ell, want in (([-0.1, -0.5], 0.0), ([0.2, 0.1], 2.0), ([-1.0, 0.5], 1.5)):
        d, ok = kaplan_yorke_dimension(np.array(ell))
        assert bool(ok) and float(d) == pytest.approx(want)


@pytest.mark.parametrize("scale", [0.5, 1.2, 2.5])     # η·λ_1 = 2·scale: stable, just past 2/η, far past it
def test_gd_full_spectrum_matches_reference(problem, scale):
    lam = problem.evals
    lr = 2 * scale / lam[0]
    d, ok = kaplan_yorke_dimension(gd_exponents(lam, lr))
    np.testing.assert_allclose(float(d), reference_dimension(_log_abs(1 - lr * lam)), rtol=1e-12, atol=1e-12)
    assert bool(ok) and 0 <= float(d) <= lam.size and (scale < 1 or float(d) >= 1.0)


def test_truncation_decides_or_says_nan(problem):
    """The top-k exponents decide D exactly when their partial sums turn negative within them (then it equals the
    full value), or ℓ1 < 0 (D = 0); otherwise NaN with determined False: never the old fill-in guesses, which gave
    0.0 at ηλ1 = 1.9 and d at ηλ1 = 2.1 with k = 1."""
    pos = np.geomspace(1.0, 0.01, 60)                          # positive definite: at ηλ1 = 1.9 all contract
    d, ok = kaplan_yorke_dimension(gd_exponents(pos, 1.9)[:1], dim=pos.size)
    assert bool(ok) and float(d) == 0.0
    lam = problem.evals                                        # the MLP's spectrum, negative eigenvalues included
    full = np.asarray(gd_exponents(lam, 2.1 / lam[0]))
    want = reference_dimension(full)
    cut = int(np.argmax(np.cumsum(full) < 0)) + 1              # the first prefix whose sum is negative
    for k in (1, cut - 1):
        d, ok = kaplan_yorke_dimension(full[:k], dim=lam.size)
        assert not bool(ok) and np.isnan(float(d))
    for k in (cut, cut + 3, lam.size):
        d, ok = kaplan_yorke_dimension(full[:k], dim=lam.size)
        assert bool(ok)
        np.testing.assert_allclose(float(d), want, rtol=1e-12)


def test_jittable_in_lr(x64):
    lam = np.array([5.0, 2.0, 1.0, 0.1])
    f = jax.jit(jax.vmap(lambda lr: kaplan_yorke_dimension(gd_exponents(lam, lr))[0]))
    lrs = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(f(lrs), [reference_dimension(_log_abs(1 - lr * lam)) for lr in lrs], rtol=1e-12)
