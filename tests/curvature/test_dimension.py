"""Sharpness (Kaplan–Yorke) dimension against an independent numpy loop, on the dense float64 Hessian of the tiny
MLP (tests/curvature/conftest.py) and on top-k Lanczos eigenvalues of the same Hessian."""
import jax
import numpy as np
import pytest

from jaxlab.curvature.dimension import kaplan_yorke_dimension, sharpness_dimension
from jaxlab.curvature.hvp import make_hvp
from jaxlab.curvature.lanczos import lanczos


def reference_dimension(eigvals, lr):
    """Kaplan–Yorke by a plain loop: ℓ_i = log|1 − ηλ_i| descending, the last j with Σ_{i≤j} ℓ_i ≥ 0."""
    with np.errstate(divide="ignore"):                 # ηλ = 1 exactly: ℓ = −inf (a collapsed direction)
        ell = sorted((np.log(abs(1.0 - lr * lam)) for lam in eigvals), reverse=True)
    total, k = 0.0, 0
    for j, e in enumerate(ell):
        if total + e < 0:
            return k + total / abs(e)
        total, k = total + e, j + 1
    return float(k)


def test_closed_form_cases():
    assert float(kaplan_yorke_dimension(np.array([-0.1, -0.5]))) == 0.0            # all contracting: a point
    assert float(kaplan_yorke_dimension(np.array([0.2, 0.1]))) == 2.0              # volume-expanding: full
    np.testing.assert_allclose(kaplan_yorke_dimension(np.array([-1.0, 0.5])), 1.5)  # 1 + 0.5/1


@pytest.mark.parametrize("scale", [0.5, 1.2, 2.5])     # η·λ_1 = 2·scale: stable, just past 2/η, far past it
def test_full_spectrum_matches_reference(problem, scale):
    lam = problem.evals
    lr = 2 * scale / lam[0]
    got = float(sharpness_dimension(lam, lr))
    np.testing.assert_allclose(got, reference_dimension(lam, lr), rtol=1e-12, atol=1e-12)
    assert 0 <= got <= lam.size
    if scale > 1:
        assert got >= 1.0                              # an expanding direction: at least one dimension


def test_top_k_lanczos_with_bulk(problem):
    lam, d, k = problem.evals, problem.evals.size, 8
    lr = 2.4 / lam[0]
    mv = make_hvp(problem.loss_fn, problem.params, problem.batch)
    top = np.asarray(jax.jit(lambda p, key: lanczos(mv, p, key, num_iters=80, k=k)[0])(problem.params,
                                                                                      jax.random.PRNGKey(0)))
    np.testing.assert_allclose(top, lam[:k], rtol=1e-8, atol=1e-10)
    ref = reference_dimension(lam, lr)
    exact_bulk = float(sharpness_dimension(top, lr, dim=d, bulk=lam[k:]))
    np.testing.assert_allclose(exact_bulk, ref, rtol=1e-7)
    lower = float(sharpness_dimension(top, lr, dim=d, bulk="smallest"))
    print(f"d={d} λ1={lam[0]:.4f} λmin={lam[-1]:.2e} D={ref:.3f} top-{k}+smallest={lower:.3f}")


@pytest.mark.parametrize("seed", range(5))
def test_bulk_assumptions_bracket_the_dimension(seed):
    """PSD spectrum whose unmeasured part lies in [0, λ_k] with η·λ_k ≤ 1: "smallest" ≤ D ≤ "zero"."""
    rng = np.random.default_rng(seed)
    d, k = 200, 10
    lam = np.sort(rng.exponential(size=d) ** 3)[::-1]
    lr = 2.3 / lam[0]
    assert lr * lam[k - 1] <= 1.0
    ref = reference_dimension(lam, lr)
    lower = float(sharpness_dimension(lam[:k], lr, dim=d, bulk="smallest"))
    upper = float(sharpness_dimension(lam[:k], lr, dim=d, bulk="zero"))
    assert lower <= ref + 1e-9 and ref <= upper + 1e-9, (lower, ref, upper)


def test_jittable_in_lr(x64):
    lam = np.array([5.0, 2.0, 1.0, 0.1])
    f = jax.jit(jax.vmap(lambda lr: sharpness_dimension(lam, lr)))
    lrs = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(f(lrs), [reference_dimension(lam, lr) for lr in lrs], rtol=1e-12)
