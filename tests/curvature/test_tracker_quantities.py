"""The tracker's newer quantities against dense float64 references on the 5-8-6-3 MLP (problem fixture):
Adam's preconditioned sharpness with the step-0 rule, the sharpness dimension, and ZO-GD's effective sharpness
(dense and from λ1/trace bounds)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.curvature.dimension import sharpness_dimension
from jaxlab.curvature.quantities import zo_critical_lr_jnp
from jaxlab.curvature.tracker import make_tracker
from jaxlab.curvature.zo_stability import zo_critical_lr
from jaxlab.schema import base_config


def _config(optimizer, quantities, **curv):
    c = base_config()
    c.loss.name = "mse"
    c.optim.name = optimizer
    c.curvature.every, c.curvature.quantities, c.curvature.num_iters = 10, quantities, 40
    for k, v in curv.items():
        c.curvature[k] = v
    return c


def test_preconditioned_sharpness_step0_and_after_updates(problem):
    """count 0: no second-moment estimate, NaN (not ε-preconditioned thousands); after real Adam steps: the top
    eigenvalue of P⁻¹H with P = √v̂ + ε (bias-corrected), from the dense float64 Hessian, to 1e-6."""
    tracker = make_tracker(_config("adam", ("sharpness",)), problem.loss_fn)
    tx = optax.adam(1e-2, b1=0.9, b2=0.99, eps=1e-8)
    state = tx.init(problem.params)
    numbers = {"lr": 1e-2, "b1": 0.9, "b2": 0.99, "eps": 1e-8}
    out, _ = jax.jit(tracker)(problem.params, state, numbers, problem.batch, tracker.init(problem.params))
    assert np.isnan(float(out["preconditioned_sharpness"])) and np.isnan(float(out["sharpness_ratio"]))
    assert np.isfinite(float(out["sharpness"]))
    params = problem.params
    for _ in range(3):
        g = jax.grad(problem.loss)(params)
        upd, state = tx.update(g, state, params)
        params = optax.apply_updates(params, upd)
    out, _ = jax.jit(tracker)(params, state, numbers, problem.batch, tracker.init(params))
    nu = jax.flatten_util.ravel_pytree(state[0].nu)[0]
    P = np.sqrt(np.asarray(nu) / (1 - 0.99 ** 3)) + 1e-8
    H = np.asarray(problem.hessian_at(jax.flatten_util.ravel_pytree(params)[0]))
    want = np.linalg.eigvalsh(H / np.sqrt(P)[:, None] / np.sqrt(P)[None, :])[-1]
    np.testing.assert_allclose(float(out["preconditioned_sharpness"]), want, rtol=1e-6)
    np.testing.assert_allclose(float(out["sharpness_ratio"]), want * (1 - 0.9) * 0.01 / (2 + 2 * 0.9), rtol=1e-6)


def test_sharpness_dimension_and_zo_dense_match_dense_spectrum(problem):
    config = _config("zo_sgd", ("sharpness_dim", "zo_dense"), k=8)
    config.optim.zo_directions = 4
    tracker = make_tracker(config, problem.loss_fn)
    lr = 1.5 / problem.evals[0]
    out, _ = jax.jit(tracker)(problem.params, None, {"lr": lr}, problem.batch, tracker.init(problem.params))
    ev = problem.evals  # dense float64, descending
    np.testing.assert_allclose(float(out["sharpness_dim"]),
                               float(sharpness_dimension(jnp.asarray(ev[:8]), lr, dim=ev.size, bulk="smallest")),
                               rtol=1e-6)
    np.testing.assert_allclose(float(out["sharpness_dim_dense"]), float(sharpness_dimension(jnp.asarray(ev), lr)),
                               rtol=1e-6)
    # The MLP's spectrum has negative eigenvalues; the effective sharpness is that of its positive part, where
    # the jittable bisection equals the numpy one (independent code)
    assert ev[-1] < 0
    psd = np.clip(ev, 0, None)
    np.testing.assert_allclose(float(out["zo_sharpness"]), 2 / zo_critical_lr(psd, 4), rtol=1e-6)
    np.testing.assert_allclose(float(zo_critical_lr_jnp(jnp.asarray(ev), 4)), zo_critical_lr(psd, 4), rtol=1e-9)


@pytest.mark.parametrize("n", [1, 4, 32])
def test_zo_bounds_bracket_the_dense_value_on_a_quadratic(n, x64):
    """L = ½θᵀAθ, A PSD with a spread spectrum: the λ1/trace bounds bracket 2/η* (dense), and the ratios are
    lr/2 times them; the trace is Hutchinson's (many probes: within 3%)."""
    lam = jnp.asarray(np.geomspace(5.0, 0.01, 40))
    A = jnp.diag(lam)
    config = _config("zo_sgd", ("zo_stability", "zo_dense"), trace_samples=400)
    config.optim.zo_directions = n
    tracker = make_tracker(config, lambda p, batch: 0.5 * p["w"] @ A @ p["w"])
    params = {"w": jnp.ones(40)}
    out, _ = jax.jit(tracker)(params, None, {"lr": 0.1}, (jnp.zeros((2, 1)), jnp.zeros((2, 1))), None)
    dense = 2.0 / zo_critical_lr(np.asarray(lam), n)
    np.testing.assert_allclose(float(out["zo_sharpness"]), dense, rtol=1e-9)
    np.testing.assert_allclose(float(out["zo_trace"]), float(lam.sum()), rtol=3e-2)
    slack = float(out["zo_trace"]) / float(lam.sum())  # the bounds use the estimated trace
    assert float(out["zo_sharpness_lower"]) <= dense * max(slack, 1.0) + 1e-9
    assert float(out["zo_sharpness_upper"]) >= dense * min(slack, 1.0) - 1e-9
    np.testing.assert_allclose(float(out["eos_threshold"]), 20.0, rtol=1e-12)
    np.testing.assert_allclose(float(out["sharpness_ratio"]), dense * 0.05, rtol=1e-9)
