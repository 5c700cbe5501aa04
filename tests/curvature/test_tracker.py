"""Curvature tracking: the tracker inside Trainer.measure against a dense float64 Hessian, its config checks, the
EoS summary numbers on synthetic records (closed forms), and a tiny end-to-end eos_weight_decay run."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from experiments.eos_weight_decay import write_eos_outputs
from jaxlab import data as data_lib
from jaxlab import optim
from jaxlab.config import ConfigError
from jaxlab.curvature.tracker import make_tracker
from jaxlab.eos import eos_run_summary
from jaxlab.experiment import run_grid
from jaxlab.schema import validate
from jaxlab.train import make_train

from curvature_testing import small_config, trained_f64


def numbers(config, lr):
    """The run's resolved optimiser numbers with the current learning rate (what Trainer.measure passes)."""
    return optim.resolve(config.optim)._replace(lr=lr)


def dense_eigvalsh(trainer, params, batch):
    flat, unravel = ravel_pytree(params)
    H = jax.hessian(lambda f: trainer.loss_fn(unravel(f), batch))(flat)
    return np.linalg.eigvalsh(np.asarray(H))[::-1]


def test_tracker_in_measure_matches_dense_hessian(x64):
    config = small_config()
    validate(config)
    ds = data_lib.get_dataset(config.data)
    trainer = make_train(config, ds)
    hp = optim.traced_numbers(config.optim, dtype=np.float64)
    state = trainer.init(jax.random.PRNGKey(0), hp)
    f64 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, t)  # noqa: E731
    state = state.replace(params=f64(state.params), opt_state=f64(state.opt_state))
    data = f64(trainer.device_data(ds))
    rec, _ = jax.jit(trainer.measure, static_argnames=("test", "curvature"))(state, hp, data, test=False, curvature=True)
    want = dense_eigvalsh(trainer, state.params, (data["x_curv"], data["y_curv"]))
    assert rec["sharpness"].dtype == jnp.float64
    np.testing.assert_allclose(float(rec["sharpness"]), want[0], rtol=1e-6)
    np.testing.assert_allclose([float(rec["eig_2"]), float(rec["eig_3"])], want[1:3], rtol=1e-6)
    np.testing.assert_allclose(float(rec["eig_ratio"]), want[0] / want[1], rtol=1e-6)
    np.testing.assert_allclose(float(rec["eos_threshold"]), 2 / 0.05, rtol=1e-12)
    np.testing.assert_allclose(float(rec["sharpness_ratio"]), want[0] * 0.05 / 2, rtol=1e-6)
    assert float(rec["sharpness_residual"]) < 1e-6
    # chunked HVPs (remainder chunk included) give the same λ1
    config.curvature.chunk_size = 24
    measure = jax.jit(make_tracker(config, trainer.loss_fn))
    got, _ = measure(state.params, state.opt_state, numbers(config, 0.05), (data["x_curv"], data["y_curv"]))
    np.testing.assert_allclose(float(got["sharpness"]), want[0], rtol=1e-6)


@pytest.mark.parametrize("name,momentum,nesterov,want", [
    ("sgd", 0.9, False, 2 / 0.1),
    ("momentum", 0.9, False, (2 + 2 * 0.9) / 0.1),
    ("momentum", 0.5, True, (2 + 2 * 0.5) / ((1 + 2 * 0.5) * 0.1)),
])
def test_threshold_per_optimiser(name, momentum, nesterov, want):
    config = small_config()
    config.optim.name, config.optim.momentum, config.optim.nesterov = name, momentum, nesterov
    config.curvature.quantities, config.curvature.num_iters = ("sharpness",), 5
    # a quadratic loss ½ θᵀAθ: λ1 = 3 exactly
    A = jnp.diag(jnp.array([3.0, 1.0, 0.5]))
    measure = make_tracker(config, lambda p, batch: 0.5 * p["w"] @ A @ p["w"], declared=optim.declaration(config.optim))
    rec, _ = jax.jit(measure)({"w": jnp.ones(3)}, None, numbers(config, jnp.float32(0.1)),
                              (jnp.zeros((4, 1)), jnp.zeros((4, 1))))
    np.testing.assert_allclose(float(rec["sharpness"]), 3.0, rtol=1e-5)
    np.testing.assert_allclose(float(rec["eos_threshold"]), want, rtol=1e-6)
    np.testing.assert_allclose(float(rec["sharpness_ratio"]), 3.0 / want, rtol=1e-5)


@pytest.mark.parametrize("key,value,message", [
    ("num_iters", 0, "config.curvature.num_iters=0: must be > 0"),
    ("num_iters", 2, "config.curvature.num_iters=2: must be >= the 3 eigenvalues"),
    ("k", 0, "config.curvature.k=0"),
    ("num_examples", -1, "config.curvature.num_examples=-1"),
    ("chunk_size", -5, "config.curvature.chunk_size=-5"),
    ("quantities", ("sharpnes",), "did you mean 'sharpness'"),
    ("quantities", (), "config.curvature.quantities=()"),
    ("quantities", ("preconditioned",), "needs an optimiser that declares a preconditioner"),
    ("quantities", ("zo_dense",), "need a zeroth-order optimiser's mode map"),
    ("quantities", ("sharpness_dim",), "config.curvature.k=1: must be >= 2 for sharpness_dim"),
])
def test_config_errors_name_the_key(key, value, message):
    config = small_config()
    config.curvature[key] = value
    if value == ("sharpness_dim",):
        config.curvature.k = 1
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(config)


def test_eos_summary_on_synthetic_records():
    """λ1 rises linearly 5 → 20 over steps 0..1000 (2/η = 20), then alternates 19, 21; the loss alternates too."""
    thr = 20.0
    recs = []
    for step in range(0, 2001, 10):
        lam = 5 + 15 * step / 1000 if step <= 1000 else (19.0 if (step // 10) % 2 else 21.0)
        loss = 1.0 / (1 + step) if step <= 1000 else (0.2 if (step // 10) % 2 else 0.1)
        recs.append({"step": step, "train_loss": loss, **({"sharpness": lam, "eos_threshold": thr,
                                                             "sharpness_ratio": lam / thr} if step % 20 == 0 else {})})
    s = eos_run_summary(recs)
    # curvature records every 20 steps: alternation seen at 20-step spacing is constant (step//10 even -> 21)
    last_q = [r for r in recs if "sharpness" in r and r["step"] >= 1500]
    assert s["threshold"] == thr
    assert s["initial_sharpness"] == 5.0 and s["final_sharpness"] == last_q[-1]["sharpness"]
    np.testing.assert_allclose(s["last_quarter_sharpness"], np.mean([r["sharpness"] for r in last_q]), rtol=1e-6)
    np.testing.assert_allclose(s["last_quarter_ratio"], s["last_quarter_sharpness"] / thr, rtol=1e-5)
    # 0.9·20 = 18 = 5 + 15 t/1000  ->  t = 866.7, first curvature record at or after it: 880
    assert s["steps_to_reach"] == 880
    np.testing.assert_allclose(s["sharpening_rate"], 1000 * (5 + 15 * 0.88 - 5) / thr / 880, rtol=1e-4)
    # last half (steps ≥ 1000): train_loss alternates 0.2/0.1 from 1010 on; 1000 → 1010 is an increase too
    half = [r["train_loss"] for r in recs if r["step"] >= 1000]
    d = np.diff(half)
    np.testing.assert_allclose(s["loss_increase_frac"], np.mean(d > 0), rtol=1e-6)
    np.testing.assert_allclose(s["loss_osc_last_half"], np.mean(np.abs(np.diff(np.log(half)))), rtol=1e-4)
    assert abs(s["loss_increase_frac"] - 0.5) < 0.01


def test_tiny_eos_run_writes_sharpness_and_threshold(tmp_path):
    config = small_config()
    config.curvature.num_iters, config.curvature.k = 10, 1
    config.optim.wd_mask = "all"
    config.sweep.axes = "optim.lr=0.05,0.1;optim.weight_decay=0,0.01"
    workdir = str(tmp_path)
    results = run_grid(config, workdir, progress=False)
    summary = write_eos_outputs(results, workdir, print_table=False)
    recs = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    curv = [r for r in recs if "sharpness" in r]
    assert len(curv) == 4 * 3  # 4 runs × steps 0, 10, 20
    for r in curv:
        np.testing.assert_allclose(r["eos_threshold"], 2 / r["run"]["optim.lr"], rtol=1e-6)
        np.testing.assert_allclose(r["sharpness_ratio"], r["sharpness"] / r["eos_threshold"], rtol=1e-5)
    on_disk = json.load(open(os.path.join(workdir, "summary.json")))
    assert len(on_disk["eos"]) == 4 and on_disk["eos"] == json.loads(json.dumps(summary["eos"]))
    # a measured time share (it rounds to 0 on a loaded machine): present and a fraction, never asserted as a speed
    assert 0 <= on_disk["curvature_time_fraction"] < 1
    for row in on_disk["eos"]:
        final = [r for r in curv if r["run"]["optim.lr"] == row["lr"] and r["run"]["optim.weight_decay"] ==
                 row["weight_decay"]][-1]
        np.testing.assert_allclose(row["final_sharpness"], final["sharpness"], rtol=1e-4)
    for name in ("eos_sharpness.png", "eos_loss.png", "loss_curves.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 1000


def test_every_quantity_with_adam(x64):
    """Every quantity that applies to Adam (all but the ZO ones) in one jitted measure after 3 Adam steps: the
    threshold is Adam's 38/η on the preconditioned sharpness (dense P^-1/2 H P^-1/2, P the next step's
    (1 − β1⁴)(√v̂₄ + ε) from the raw state and the gradient), layer shares sum to 1, the trace is within 4
    standard errors of the dense trace, ntk_max is the dense GGN's top eigenvalue (= (1/N) J Jᵀ for MSE), and the
    step map's flip multiplier is that of the dense step Jacobian."""
    from jaxlab.curvature.tracker import QUANTITIES

    config = small_config()
    config.optim.name, config.optim.lr = "adam", 0.01
    config.curvature.quantities = tuple(q for q in QUANTITIES if not q.startswith("zo_"))
    config.curvature.step_iters = 120
    config.curvature.trace_samples = 200
    trainer, hp, data, state = trained_f64(config, 3)
    rec, _ = jax.jit(trainer.measure, static_argnames=("test", "curvature"))(state, hp, data, test=False, curvature=True)
    batch = (data["x_curv"], data["y_curv"])
    flat, unravel = ravel_pytree(state.params)
    H = np.asarray(jax.hessian(lambda f: trainer.loss_fn(unravel(f), batch))(flat))
    adam = state.opt_state[0]
    nu, g = ravel_pytree(adam.nu)[0], ravel_pytree(jax.grad(trainer.loss_fn)(state.params, batch))[0]
    assert int(adam.count) == 3
    p = np.asarray((1 - 0.9 ** 4) * (np.sqrt((0.999 * nu + 0.001 * g ** 2) / (1 - 0.999 ** 4)) + 1e-8))
    pre = np.linalg.eigvalsh(H / np.sqrt(np.outer(p, p)))[-1]
    np.testing.assert_allclose(float(rec["sharpness"]), np.linalg.eigvalsh(H)[-1], rtol=1e-6)
    np.testing.assert_allclose(float(rec["preconditioned_sharpness"]), pre, rtol=1e-6)
    np.testing.assert_allclose(float(rec["eos_threshold"]), 38 / 0.01, rtol=1e-9)
    np.testing.assert_allclose(float(rec["sharpness_ratio"]), pre * 0.01 / 38, rtol=1e-6)
    shares = [float(v) for k, v in rec.items() if k.startswith("share/")]
    assert len(shares) == 4 and abs(sum(shares) - 1) < 1e-9
    assert abs(float(rec["hessian_trace"]) - np.trace(H)) < 4 * float(rec["hessian_trace_stderr"])
    J = jax.jacobian(lambda f: trainer.apply(unravel(f), batch[0]).reshape(-1))(flat)
    np.testing.assert_allclose(float(rec["ntk_max"]), np.linalg.eigvalsh(np.asarray(J @ J.T))[-1] / 64, rtol=1e-6)
    assert all(np.isfinite(float(v)) for k, v in rec.items() if k.startswith("align_"))
    np.testing.assert_allclose(float(rec["step_flip"]), float(rec["step_flip_dense"]), rtol=1e-6)


def test_warm_start_carries_eigenvectors_and_beats_a_cold_start(x64):
    """The carry returned by one measurement (the top eigenvectors) starts the next one's Lanczos: after 3 GD
    steps, 5 warm iterations get λ1 to 1e-5 of the dense value; 5 cold ones (same key) are far worse."""
    config = small_config()
    config.curvature.k, config.curvature.quantities = 1, ("sharpness",)
    ds = data_lib.get_dataset(config.data)
    trainer = make_train(config, ds)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), trainer.init(
        jax.random.PRNGKey(0), optim.traced_numbers(config.optim, dtype=np.float64)).params)
    batch = (jnp.asarray(ds.x_train, jnp.float64), jnp.asarray(ds.y_train))
    measure = make_tracker(config, trainer.loss_fn)
    carry = measure.init(params)
    assert all(float(jnp.abs(c).max()) == 0 for c in jax.tree.leaves(carry))
    assert jax.tree.structure(carry["vectors"]) == jax.tree.structure(params)
    nums = numbers(config, 0.05)
    first, first_carry = measure(params, None, nums, batch, carry)       # 80 iterations from the seed's vector
    for _ in range(3):
        params = jax.tree.map(lambda p, g: p - 0.05 * g, params, jax.grad(trainer.loss_fn)(params, batch))
    want = dense_eigvalsh(trainer, params, batch)[0]
    config.curvature.num_iters = 5
    short = make_tracker(config, trainer.loss_fn)
    warm, warm_carry = short(params, None, nums, batch, first_carry)
    cold, cold_carry = short(params, None, nums, batch)
    warm_err, cold_err = abs(float(warm["sharpness"]) - want) / want, abs(float(cold["sharpness"]) - want) / want
    assert warm_err < 1e-5, (warm_err, cold_err)
    assert cold_err > 100 * warm_err, (warm_err, cold_err)
    assert warm_carry is not None and cold_carry is None
    assert jax.tree.structure(warm_carry["vectors"]) == jax.tree.structure(params)   # leading axis k


def test_run_threads_the_warm_start_carry(tmp_path):
    """run() moves each measurement's carry into TrainState.curv: the final state holds the last top Ritz vector
    (unit norm, in {"vectors": [k, ...]}), and warm- and cold-started runs record the same sharpness at full
    accuracy."""
    from jaxlab.train import run

    config = small_config()
    config.curvature.num_iters, config.curvature.k = 40, 1
    config.curvature.quantities = ("sharpness",)
    warm = run(config, seed=0)
    u = warm.state.curv["vectors"]
    norm = float(jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(u))))
    np.testing.assert_allclose(norm, 1.0, rtol=1e-5)
    config.curvature.warm_start = False
    cold = run(config, seed=0)
    assert cold.state.curv is None
    a = [r["sharpness"] for r in warm.records if "sharpness" in r]
    b = [r["sharpness"] for r in cold.records if "sharpness" in r]
    np.testing.assert_allclose(a, b, rtol=1e-4)
