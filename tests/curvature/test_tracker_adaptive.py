"""The adaptive tracker (curvature.tol) on the default EoS experiment's settings (experiments/configs/eos_weight_decay.py: tanh MLP
40-200-200-10, MSE, MNIST-1D, sharpness + eig_gap + ntk with curvature.tol), on a short run at η = 0.2 that reaches
the edge of stability: every recorded λ1 and NTK λ1 against a converged float64 reference at the same weights; and
single-vector / block Lanczos with the other trace estimators through Trainer.measure against the dense Hessian."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from experiments.configs.eos_weight_decay import get_config
from jaxlab.curvature.krylov import lanczos_adaptive
from jaxlab.curvature.ntk import mse_row_weights, ntk_adaptive
from jaxlab.curvature.linearise import linearise
from jaxlab.losses import mse
from jaxlab import data as data_lib, optim
from jaxlab.bench.curvature_peers import enable_x64
from jaxlab.train import make_train, run

from curvature_testing import small_config


def test_every_measurement_within_1e3_of_a_float64_reference():
    """300 GD steps at η = 0.2 (λ1 reaches 2/η = 10 by step ~200), measured every 50 steps (7 measurements):
    λ1 (sharpness) and the Gauss–Newton λ1 (ntk_max) within 1e-3 relative of float64 Lanczos converged to a 1e-10
    residual at the same weights; each measurement stops before the cap and records its operator products."""
    config = get_config()
    config.train.steps, config.train.progress = 300, False
    config.optim.lr = 0.2
    config.sweep.axes = ""
    params = {}                                # the weights at every chunk's end (float32: the run as the experiment's)
    result = run(config, seed=0, callbacks=[lambda s, step, recs: params.__setitem__(step, jax.device_get(s.params))])
    records = [r for r in result.records if "sharpness" in r]
    assert [r["step"] for r in records] == list(range(0, 301, 50))
    ds = data_lib.get_dataset(config.data)
    trainer = make_train(config, ds)
    data = trainer.device_data(ds)
    params[0] = trainer.init(jax.random.PRNGKey(0), optim.traced_numbers(config.optim)).params
    x, y = np.asarray(data["x_curv"]), np.asarray(data["y_curv"])
    with enable_x64():
        _check_against_references(records, params, trainer, x, y, config)


def _check_against_references(records, params, trainer, x, y, config):
    x64_batch = (jnp.asarray(x, jnp.float64), jnp.asarray(y))
    w, scale = mse_row_weights((x.shape[0], 10), jnp.asarray(y), jnp.float64)

    @jax.jit
    def reference(p):
        lin = linearise(trainer.apply, mse, p, x64_batch)
        lam = lanczos_adaptive(lin.hvp, p, jax.random.PRNGKey(1), tol=1e-10, max_iters=150).eigvals[0]
        ntk = ntk_adaptive(lin.jvp, lin.vjp, lin.outputs, jax.random.PRNGKey(2), row_weights=w, scale=scale,
                           tol=1e-10, max_iters=150).eigvals[0]
        return lam, ntk

    for rec in records:
        p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params[rec["step"]])
        lam, ntk = map(float, reference(p))
        assert abs(rec["sharpness"] - lam) <= 1e-3 * lam, (rec["step"], rec["sharpness"], lam)
        assert abs(rec["ntk_max"] - ntk) <= 1e-3 * ntk, (rec["step"], rec["ntk_max"], ntk)
        assert 3 <= rec["lanczos_iters"] < config.curvature.num_iters and rec["ntk_iters"] >= 1
    assert max(r["sharpness"] for r in records) > 0.9 * 2 / config.optim.lr   # it did reach the edge


@pytest.mark.parametrize("block_size, estimator", [(0, "xtrace"), (3, "hutchpp")])
def test_adaptive_and_block_tracker_match_dense(x64, block_size, estimator):
    """The tracker with tol = 1e-8 (single-vector and block Lanczos, block of 3) through Trainer.measure with the
    model's apply_fn (the shared linearisation): top-3 = the dense float64 Hessian's to 1e-6, fewer products than
    the cap, and the trace by XTrace / Hutch++ within 4 standard errors of the dense trace."""
    config = small_config()
    config.curvature.tol, config.curvature.block_size = 1e-8, block_size
    config.curvature.quantities = ("sharpness", "eig_gap", "trace")
    config.curvature.trace_estimator, config.curvature.trace_samples = estimator, 30
    ds = data_lib.get_dataset(config.data)
    trainer = make_train(config, ds)
    assert trainer.tracker.joint
    hp = optim.traced_numbers(config.optim, dtype=np.float64)
    state = trainer.init(jax.random.PRNGKey(0), hp)
    f64 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, t)  # noqa: E731
    state = state.replace(params=f64(state.params), opt_state=f64(state.opt_state), curv=f64(state.curv))
    data = f64(trainer.device_data(ds))
    rec, carry = jax.jit(trainer.measure, static_argnames=("test", "curvature"))(state, hp, data, test=False,
                                                                                 curvature=True)
    flat, unravel = ravel_pytree(state.params)
    H = np.asarray(jax.jit(jax.hessian(lambda f: trainer.loss_fn(unravel(f), (data["x_curv"], data["y_curv"]))))(flat))
    want = np.linalg.eigvalsh(H)[::-1]
    np.testing.assert_allclose([float(rec["sharpness"]), float(rec["eig_2"]), float(rec["eig_3"])], want[:3],
                               rtol=1e-6)
    assert 3 <= int(rec["lanczos_iters"]) < config.curvature.num_iters
    assert abs(float(rec["hessian_trace"]) - np.trace(H)) <= 4 * float(rec["hessian_trace_stderr"])
    assert jax.tree.structure(carry["vectors"]) == jax.tree.structure(state.params)
