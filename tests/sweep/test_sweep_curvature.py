"""Curvature tracking under the sweep's vmap: each run's sharpness is that of its own parameters.

The real tracker (``jaxlab.curvature.tracker``, Lanczos with warm start, the run's own optimiser numbers) runs
vmapped over (seed, optim.lr); each run's curvature records are compared with a separate
``jaxlab.train.run(config with that lr, seed)``. (HVPs through the CNN's vmapped im2col form against its XLA
form: tests/sweep/test_sweep_cnn.py.)
"""
import jax
import numpy as np

from jaxlab.grid import with_overrides
from jaxlab.sweep import sweep
from jaxlab.train import run

from sweep_testing import sweep_config

# The vmapped program and the one-run program do the same float32 arithmetic, possibly fused or associated
# differently by XLA: 20 full-batch steps then Lanczos (20 iterations) agree to 1e-5 relative.
RTOL = 1e-5
CURVATURE_KEYS = ("sharpness", "eos_threshold", "sharpness_ratio")
LRS = [0.05, 0.2]


def test_sharpness_per_run_under_vmap():
    config = sweep_config()
    config.curvature.every = 10
    config.train.batch_size = 0
    res = sweep(config, seeds=2, axes={"optim.lr": LRS}, log=None)
    assert len(res) == 4
    sharp = [r.result.records[-1]["sharpness"] for r in res]
    assert all(np.isfinite(sharp)) and all(s > 0 for s in sharp)
    assert len(set(sharp)) == len(sharp)  # four runs, four different values
    for r in res:
        lr, seed = r.coords["optim.lr"], r.coords["seed"]
        assert [rec["step"] for rec in r.result.records if "sharpness" in rec] == [0, 10, 20]
        ref = run(with_overrides(config, {"optim.lr": lr}), seed, progress=False)
        assert [rec["step"] for rec in ref.records] == [rec["step"] for rec in r.result.records]
        for k in CURVATURE_KEYS:
            got = [rec[k] for rec in r.result.records if k in rec]
            want = [rec[k] for rec in ref.records if k in rec]
            assert len(got) == len(want) == 3, k
            np.testing.assert_allclose(got, want, rtol=RTOL, err_msg=f"{k} (lr={lr}, seed={seed})")
        # Each run's own numbers: the SGD threshold 2/lr, so the ratio is sharpness·lr/2.
        for rec in r.result.records:
            if "sharpness" in rec:
                np.testing.assert_allclose(rec["eos_threshold"], 2.0 / lr, rtol=RTOL)
                np.testing.assert_allclose(rec["sharpness_ratio"], rec["sharpness"] * lr / 2.0, rtol=RTOL)
        for a, b in zip(jax.tree.leaves(r.result.state.params), jax.tree.leaves(ref.state.params)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_adaptive_lanczos_per_run_loop_equals_batched_and_separate_runs():
    """curvature.runs = "loop" (a CPU's default with tol > 0): under the sweep's vmap each run measures on its own,
    so its Lanczos stops on its own residuals. Its λ1, λ2 and NTK λ1 equal a separate run's to RTOL, and its
    per-run lanczos_iters are those of the separate run (to one step: float32 rounding can move a residual across
    the tolerance), and differ across runs. (The batched form of the same adaptive loop under vmap:
    tests/curvature/test_krylov.py.)"""
    config = sweep_config()
    config.train.batch_size, config.curvature.every = 0, 10
    config.curvature.quantities = ("sharpness", "eig_gap", "ntk")
    config.curvature.tol, config.curvature.num_iters = 1e-3, 30
    config.curvature.runs = "loop"
    iters = []
    for a in sweep(config, seeds=1, axes={"optim.lr": LRS}, log=None):
        ref = run(with_overrides(config, {"optim.lr": a.coords["optim.lr"]}), 0, progress=False)
        for k in ("sharpness", "eig_2", "ntk_max"):
            want = [rec[k] for rec in ref.records if k in rec]
            np.testing.assert_allclose([rec[k] for rec in a.result.records if k in rec], want, rtol=RTOL, err_msg=k)
        mine = [rec["lanczos_iters"] for rec in a.result.records if "lanczos_iters" in rec]
        theirs = [rec["lanczos_iters"] for rec in ref.records if "lanczos_iters" in rec]
        assert np.max(np.abs(np.subtract(mine, theirs))) <= 1, (mine, theirs)
        iters.append(mine)
    assert iters[0] != iters[1], iters
