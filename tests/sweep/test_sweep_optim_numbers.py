"""The curvature tracker reads the run's own optimiser numbers: a vmapped sweep over a traced β (Adam's b1,
heavy-ball momentum) records, run by run, the thresholds and (preconditioned) sharpness that separate runs record.

Before the tracker took the resolved numbers as an argument, a momentum sweep at lr 0.05 recorded the 0.9
threshold (76) for the momentum-0.5 run too; the separate run records 60. Tolerance: 1e-5 relative (float32,
traced vs constant-folded β)."""
import numpy as np
import pytest

from jaxlab.grid import with_overrides
from jaxlab.schema import base_config
from jaxlab.sweep import sweep
from jaxlab.train import run


def tracked_config(optimizer: str):
    """Tanh MLP 40-16-10 on 128 MNIST-1D examples, full batch, MSE, curvature every 10 steps."""
    c = base_config()
    c.data.num_train, c.data.num_test = 128, 64
    c.model.widths = (16,)
    c.loss.name = "mse"
    c.optim.name = optimizer
    c.optim.lr = 0.05 if optimizer == "momentum" else 0.01
    c.train.steps, c.train.log_every, c.train.progress = 20, 10, False
    c.curvature.every = 10
    c.curvature.num_iters = 20
    c.curvature.quantities = ("sharpness",)  # adam adds "preconditioned" by itself
    return c


# float32 reduction order only. Adam's P⁻¹ = 1/(√v̂ + ε) after 20 steps (λ1(P⁻¹H) ≈ 3,300) amplifies it: the sweep
# and the separate run differ by 4e-5 under the suite's XLA flags (tests/conftest.py), 1e-5 under XLA's defaults.
RTOL = {"momentum": 1e-5, "adam": 1e-4}


@pytest.mark.parametrize("optimizer,path,values,keys", [
    ("momentum", "optim.momentum", [0.5, 0.9], ("eos_threshold", "sharpness", "sharpness_ratio")),
    ("adam", "optim.b1", [0.8, 0.9], ("eos_threshold", "preconditioned_sharpness", "sharpness_ratio")),
])
def test_swept_beta_reaches_thresholds_and_preconditioners(optimizer, path, values, keys):
    config = tracked_config(optimizer)
    res = sweep(config, seeds=1, axes={path: values}, log=None)
    assert [r.coords[path] for r in res] == values
    for r, value in zip(res, values):
        alone = run(with_overrides(config, {path: value}), seed=0)
        for rec, want in zip(r.result.records, alone.records):
            assert rec["step"] == want["step"]
            for k in keys:
                if k in want:
                    np.testing.assert_allclose(rec[k], want[k], rtol=RTOL[optimizer], err_msg=f"{path}={value} {k}")
        measured = [rec for rec in alone.records if "eos_threshold" in rec]
        assert measured, "no curvature record"
    if optimizer == "momentum":  # the closed form (2 + 2β)/η, per run
        got = [r.result.records[-1]["eos_threshold"] for r in res]
        np.testing.assert_allclose(got, [(2 + 2 * b) / 0.05 for b in values], rtol=1e-6)
    else:  # (2 + 2β1)/((1 − β1)η)
        got = [r.result.records[-1]["eos_threshold"] for r in res]
        np.testing.assert_allclose(got, [(2 + 2 * b) / ((1 - b) * 0.01) for b in values], rtol=1e-6)
        assert all(np.isfinite(r.result.records[-1]["preconditioned_sharpness"]) for r in res)
