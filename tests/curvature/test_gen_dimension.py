"""Sharpness dimension estimators of experiments/gen_eos.py against dense float64 references.

Reference problem: tanh MLP 5-8-6-3 (n = 123), MSE on 24 random examples (conftest.problem). Minibatch SGD with
batch 6: each sampled map is J_ω = I − ηH_ω with H_ω the dense Hessian (jax.hessian) on the minibatch the tracker
draws; the reference exponents are the mean over maps of numpy's log σ(J_ω), D by a plain Kaplan–Yorke loop.
  - RDS estimators (sharpness_dim_dense: the step's own dense J; sharpness_dim: Lanczos on JᵀJ with k = n): 1e-7.
  - SLQ estimators (sharpness_dim_slq: GD exponents of the same maps' Hessians; sharpness_dim_step_slq: ½ log of
    SLQ nodes of J_ωᵀJ_ω; both n-quantiles of the SLQ measure): within 2% of n of the dense value with 64
    Lanczos steps × 16 probes per map, and within 3% of n on the full-batch H with 40 steps × 32 probes
    (ηλ1 = 1.5 and 2.2); the top exponent (ln‖J‖) within 0.05.
  - quantile_exponents: n equal atoms come back exactly.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from curvature_testing import reference_dimension

from jaxlab import optim
from jaxlab.curvature.dimension import gd_exponent_quantiles, quantile_exponents
from jaxlab.curvature.spectrum import slq_nodes
from jaxlab.curvature.tracker import make_tracker
from jaxlab.schema import base_config

BS, MAPS, T, EDGE = 6, 3, 7, 2.2      # batch, sampled maps, measurement step, ηλ1 of the full-batch H


def _tracker_out(problem, quantities, slq_iters=123, probes=32):
    n = problem.flat.shape[0]
    lr = EDGE / problem.evals[0]
    c = base_config()
    c.optim.name, c.optim.lr, c.train.batch_size = "sgd", float(lr), BS
    c.curvature.every, c.curvature.k, c.curvature.step_iters, c.curvature.num_iters = 10, n, n, 20
    c.curvature.dim_samples, c.curvature.slq_iters, c.curvature.trace_samples = MAPS, slq_iters, probes
    c.curvature.quantities = quantities
    tracker = make_tracker(c, problem.loss_fn, declared=optim.declaration(c.optim))
    state = optim.make_optimizer(c.optim, 100).init(problem.params)
    step = optim.make_step(c.optim, 100, {"lr": lr})
    fn = jax.jit(lambda p, s: tracker(p, s, optim.resolve(c.optim)._replace(lr=lr), problem.batch, t=T, step=step))
    return tracker, lr, fn(problem.params, state)[0]


def _reference(problem, tracker, lr):
    """Mean over the tracker's maps of log σ(I − ηH_ω), H_ω dense on the minibatch each map's key draws."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(tracker.seed), T), 6)
    n = problem.flat.shape[0]
    hessian = jax.jit(jax.hessian(lambda f, x, y: problem.loss_fn(problem.unravel(f), (x, y))))  # eager: ~10 s
    logs = []
    for k in jax.random.split(key, MAPS):
        idx = np.asarray(jax.random.choice(jax.random.split(k)[0], problem.x.shape[0], (BS,), replace=False))
        H = hessian(problem.flat, problem.x[idx], problem.y[idx])
        logs.append(np.log(np.linalg.svd(np.eye(n) - lr * np.asarray(H), compute_uv=False)))
    return np.mean(logs, axis=0)


def test_rds_dimension_with_fixed_minibatches_equals_dense(problem):
    tracker, lr, out = _tracker_out(problem, ("sharpness_dim", "sharpness_dim_dense"))
    ell = _reference(problem, tracker, lr)
    want = reference_dimension(ell)
    assert 0 < want < ell.size and ell[0] > 0, (want, ell[0])     # an expanding direction, D decided within n
    np.testing.assert_allclose(float(out["sharpness_dim_dense"]), want, rtol=1e-7)
    np.testing.assert_allclose(float(out["step_lyapunov_top_dense"]), ell.max(), rtol=1e-7)
    np.testing.assert_allclose(float(out["sharpness_dim"]), want, rtol=1e-6)
    np.testing.assert_allclose(float(out["step_lyapunov_top"]), ell.max(), rtol=1e-6)


def test_slq_dimensions_of_the_same_maps_are_within_two_percent(problem):
    tracker, lr, out = _tracker_out(problem, ("sharpness_dim_slq", "sharpness_dim_step_slq"), slq_iters=64,
                                    probes=16)
    ell = _reference(problem, tracker, lr)
    n, want = ell.size, reference_dimension(ell)
    for key, top in (("sharpness_dim_slq", "slq_lyapunov_top"), ("sharpness_dim_step_slq", "step_slq_lyapunov_top")):
        assert abs(float(out[key]) - want) <= 0.02 * n, (key, float(out[key]), want)
        assert abs(float(out[top]) - ell.max()) <= 0.05, (top, float(out[top]), ell.max())


@pytest.mark.parametrize("edge", [1.5, 2.2])
def test_slq_dimension_with_fewer_steps_than_n_is_within_three_percent(problem, edge):
    n = problem.flat.shape[0]
    lr = edge / problem.evals[0]
    want = reference_dimension(np.log(np.abs(1 - lr * problem.evals)))
    mv = jax.jit(lambda v: jax.jvp(jax.grad(problem.loss), (problem.params,), (v,))[1])
    nodes, w = slq_nodes(mv, problem.params, jax.random.PRNGKey(3), 40, 32)
    got = float(reference_dimension(np.asarray(gd_exponent_quantiles(nodes, w, lr, n))))
    assert abs(got - want) <= 0.03 * n, (got, want)


def test_quantiles_of_equal_atoms_are_the_atoms():
    v = jnp.array([0.3, -1.0, 2.0, 0.0, -0.5])
    got = quantile_exponents(v, jnp.full(5, 0.2), 5)
    np.testing.assert_allclose(np.asarray(got), [2.0, 0.3, 0.0, -0.5, -1.0], rtol=1e-6)
    # two atoms with mass centres at levels ¼ and ¾; levels 1/6, 1/2, 5/6: clamped, half-way, clamped
    got = quantile_exponents(jnp.array([0.0, 1.0]), jnp.array([0.5, 0.5]), 3)
    np.testing.assert_allclose(np.asarray(got), [1.0, 0.5, 0.0], rtol=1e-6)
