"""The tracker's preconditioned and zeroth-order quantities against dense float64 references on the 5-8-6-3 MLP
(problem fixture, 123 parameters, whose spectrum has negative eigenvalues):
- Adam's preconditioned sharpness at count 0 uses the first step's P = (1 − β1)(|g| + ε) (the step exists, so
  its operator is recorded, not NaN);
- ZO-GD's effective sharpness 2/η* (zo_dense) equals an independent numpy bisection of φ(η) = 1 on the positive
  eigenvalues;
- the bounds (zo_stability) contain the dense value with negative eigenvalues present: exactly with the dense
  positive trace (by construction), and as recorded with the SLQ estimate (whose own error is checked);
- a fresh key per measurement: the same step gives the same Hutchinson trace, another step other probes.
"""
import jax
import numpy as np
import optax
import pytest

from jaxlab import optim
from jaxlab.curvature.tracker import make_tracker
from jaxlab.curvature.zo_stability import critical_lr_bounds
from jaxlab.schema import base_config


def _config(optimizer, quantities, **curv):
    c = base_config()
    c.loss.name = "mse"
    c.optim.name = optimizer
    c.curvature.every, c.curvature.quantities, c.curvature.num_iters = 10, quantities, 40
    for k, v in curv.items():
        c.curvature[k] = v
    return c


def _tracker(config, problem):
    return make_tracker(config, problem.loss_fn, declared=optim.declaration(config.optim))


def numpy_critical_lr(lam, n):
    """η* of ZO-GD by plain bisection of φ(η) = (η/n) Σ_{λ>0} λ/(2 − η(1+1/n)λ) = 1 (independent of jaxlab)."""
    lam = lam[lam > 0]
    a = 1 + 1 / n
    lo, hi = 0.0, 2 / (a * lam.max())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mid / n * np.sum(lam / (2 - mid * a * lam)) < 1 else (lo, mid)
    return lo


def test_preconditioned_sharpness_at_count_zero(problem):
    tracker = _tracker(_config("adam", ("sharpness",)), problem)
    state = optax.adam(1e-2, b1=0.9, b2=0.99, eps=1e-8).init(problem.params)
    numbers = optim.Numbers(lr=1e-2, b1=0.9, b2=0.99, eps=1e-8)
    out, _ = jax.jit(tracker)(problem.params, state, numbers, problem.batch, tracker.init(problem.params))
    g = np.asarray(jax.flatten_util.ravel_pytree(jax.grad(problem.loss)(problem.params))[0])
    P = (1 - 0.9) * (np.abs(g) + 1e-8)                 # ν₁ = (1 − β2)g², v̂₁ = g²
    want = np.linalg.eigvalsh(problem.H / np.sqrt(np.outer(P, P)))[-1]
    np.testing.assert_allclose(float(out["preconditioned_sharpness"]), want, rtol=1e-6)
    np.testing.assert_allclose(float(out["sharpness_ratio"]), want * 0.1 * 1e-2 / 3.8, rtol=1e-6)


@pytest.mark.parametrize("n", [1, 4])
def test_zo_dense_matches_an_independent_bisection(problem, n):
    config = _config("zo_sgd", ("zo_dense",))
    config.optim.zo_directions = n
    tracker = _tracker(config, problem)
    out, _ = jax.jit(tracker)(problem.params, None, optim.Numbers(lr=0.1), problem.batch, None)
    assert problem.evals[-1] < 0
    np.testing.assert_allclose(float(out["zo_sharpness"]), 2 / numpy_critical_lr(problem.evals, n), rtol=1e-9)
    np.testing.assert_allclose(float(out["eos_threshold"]), 20.0, rtol=1e-12)
    np.testing.assert_allclose(float(out["sharpness_ratio"]), float(out["zo_sharpness"]) / 20, rtol=1e-12)


@pytest.mark.parametrize("name, nesterov", [("zo_sgd", False), ("zo_momentum", True)])   # heavy ball: test_zo_stability
def test_zo_bounds_contain_the_dense_value_with_negative_eigenvalues(problem, name, nesterov):
    config = _config(name, ("zo_stability", "zo_dense"), num_iters=123, trace_samples=40)
    config.optim.zo_directions, config.optim.nesterov, config.optim.momentum = 2, nesterov, 0.9
    numbers = optim.resolve(config.optim)._replace(lr=0.05)
    out, _ = jax.jit(_tracker(config, problem))(problem.params, None, numbers, problem.batch, None)
    lam = problem.evals
    assert np.sum(lam < 0) > 10                        # a spectrum with many negative directions
    dense, tr_pos = float(out["zo_sharpness"]), float(np.sum(lam[lam > 0]))
    lo, hi = critical_lr_bounds(lam[0], tr_pos, 2, optim.declaration(config.optim).mode_map, numbers)
    assert 2 / float(hi) <= dense * (1 + 1e-9) and dense <= 2 / float(lo) * (1 + 1e-9)   # by construction
    err = abs(float(out["zo_trace_positive"]) - tr_pos)
    assert err < 4 * float(out["zo_trace_positive_stderr"]) + 1e-9, (err, float(out["zo_trace_positive_stderr"]))
    np.testing.assert_allclose(float(out["zo_operator_max"]), lam[0], rtol=1e-8)
    assert float(out["zo_sharpness_lower"]) <= dense <= float(out["zo_sharpness_upper"])
    np.testing.assert_allclose(float(out["zo_ratio_upper"]), float(out["zo_sharpness_upper"]) * 0.05 / 2, rtol=1e-9)


def test_a_fresh_key_per_measurement(problem):
    """Probes and start vectors come from the curvature seed folded with the training step: the same step
    reproduces the trace exactly, another step draws new probes (its error is not frozen along the run)."""
    tracker = _tracker(_config("sgd", ("trace",), trace_samples=4), problem)
    numbers = optim.Numbers(lr=0.1)
    f = jax.jit(lambda t: tracker(problem.params, None, numbers, problem.batch, None, t=t)[0]["hessian_trace"])
    a, b, c = float(f(10)), float(f(10)), float(f(20))
    assert a == b and a != c
    exact = np.trace(problem.H)
    errors = [float(f(t)) - exact for t in range(0, 400, 10)]
    assert abs(np.mean(errors)) < 4 * np.std(errors) / np.sqrt(len(errors))   # independent, unbiased errors
