"""The tracker's sharpness dimension of the step map against a dense SVD of the map written out by hand (float64).

On L = ½θᵀAθ (d = 8, a spectrum with one eigenvalue past 2/η = 8 for GD and heavy ball, and one negative), the Jacobian of one step is, for
  GD          J = I − ηA
  heavy ball  J = [[I − ηA, −ηβI], [A, βI]]      (optax.trace: m' = βm + g, θ' = θ − ηm'; state (θ, m))
  ZO-GD       J_s = I − η P_s A,  P_s = (1/n) Σ_i u_i u_iᵀ with the directions jaxlab.optim.zo_gradient draws
              from the measurement's key (the central two-point estimate is exact on a quadratic)
The reference exponents are the mean over maps of log σ_i(J) from numpy's SVD, and D their Kaplan–Yorke value by a
plain loop. The tracker's "sharpness_dim" (Lanczos on JᵀJ, k = the state's dimension) and "step_dense" (its own
dense J) must both equal it to 1e-7 (ZO: the estimate is a difference quotient, exact up to rounding); with k too small to decide, "sharpness_dim" is NaN and flagged.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from curvature_testing import reference_dimension

from jaxlab import optim
from jaxlab.curvature.tracker import make_tracker
from jaxlab.schema import base_config

D, BETA, N_DIR = 8, 0.7, 2
LRS = {"sgd": 0.25, "momentum": 0.25, "zo_sgd": 0.1}      # ZO-GD at 0.25 expands volume: D = d, trivially
LAM = np.array([9.0, 5.0, 3.0, 1.5, 0.8, 0.3, 0.05, -0.6])      # ηλ1 = 2.25: one expanding direction


def _setup(name, k, dim_samples=3):
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D)))
    A = q @ np.diag(LAM) @ q.T
    c = base_config()
    LR = LRS[name]
    c.optim.name, c.optim.lr, c.optim.momentum, c.optim.zo_directions = name, LR, BETA, N_DIR
    c.curvature.every, c.curvature.k, c.curvature.step_iters = 10, k, 2 * D
    c.curvature.dim_samples, c.curvature.num_iters = dim_samples, 2 * D
    c.curvature.quantities = ("sharpness_dim", "step_dense")
    loss_fn = lambda p, batch: 0.5 * p @ jnp.asarray(A) @ p  # noqa: E731
    tracker = make_tracker(c, loss_fn, declared=optim.declaration(c.optim))
    theta = jnp.asarray(np.random.default_rng(1).normal(size=D))
    state = optim.make_optimizer(c.optim, 100).init(theta)
    step = optim.make_step(c.optim, 100, {"lr": LR})
    out, _ = jax.jit(lambda th, st: tracker(th, st, optim.resolve(c.optim)._replace(lr=LR), (jnp.zeros((4, 1)),) * 2,
                                            t=7, step=step))(theta, state)
    return A, tracker, out


def _zo_maps(tracker, A):
    """J_s for the keys the tracker uses: measurement key fold_in(PRNGKey(seed), t), then 6, split per map, then
    (batch key, direction key); zo_gradient draws u_i = normal(fold_in(direction key, i))."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(tracker.seed), 7), 6)
    maps = []
    for k in jax.random.split(key, tracker.dim_samples):
        _, k_dir = jax.random.split(k)
        U = np.stack([np.asarray(jax.random.normal(jax.random.fold_in(k_dir, i), (D,))) for i in range(N_DIR)])
        maps.append(np.eye(D) - LRS["zo_sgd"] * (U.T @ U / N_DIR) @ A)
    return maps


@pytest.mark.parametrize("name", ["sgd", "momentum", "zo_sgd"])
def test_sharpness_dim_equals_dense_svd_of_the_written_out_map(x64, name):
    dim = 2 * D if name == "momentum" else D
    A, tracker, out = _setup(name, k=dim)
    LR = LRS[name]
    if name == "sgd":
        maps = [np.eye(D) - LR * A]
    elif name == "momentum":
        maps = [np.block([[np.eye(D) - LR * A, -LR * BETA * np.eye(D)], [A, BETA * np.eye(D)]])]
    else:
        maps = _zo_maps(tracker, A)
    ell = np.mean([np.log(np.linalg.svd(J, compute_uv=False)) for J in maps], axis=0)
    want = reference_dimension(ell)
    assert 0 < want < dim
    np.testing.assert_allclose(float(out["sharpness_dim_dense"]), want, rtol=1e-7)
    np.testing.assert_allclose(float(out["sharpness_dim"]), want, rtol=1e-7)
    assert float(out["sharpness_dim_determined"]) == 1.0
    np.testing.assert_allclose(float(out["step_lyapunov_top"]), np.max(ell), rtol=1e-7)
    if name == "zo_sgd":   # J − I has rank 2: most singular values are 1, so D is near d, far from GD's value
        gd = reference_dimension(np.log(np.abs(1 - LR * LAM)))
        assert want > gd + 2, (want, gd)


def test_sharpness_dim_is_nan_when_the_top_k_cannot_decide(x64):
    _, _, out = _setup("sgd", k=2)
    assert np.isnan(float(out["sharpness_dim"])) and float(out["sharpness_dim_determined"]) == 0.0
    assert np.isfinite(float(out["sharpness_dim_dense"]))
