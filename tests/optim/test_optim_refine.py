"""Schedule refinement (Defazio et al., 2023) against hand-computed sequences."""
import json

import numpy as np
import pytest

from jaxlab.optim.refine import load_grad_norms, refine


def test_hand_computed_refinement():
    # g = [1, 2, 1, ½] (no smoothing): w = g⁻² = [1, ¼, 1, 4]; tails Σ_{p>t} w = [5.25, 5, 4, 0];
    # η = w·tail = [5.25, 1.25, 4, 0], normalised by 5.25.
    np.testing.assert_allclose(refine([1.0, 2.0, 1.0, 0.5], width=0.1), np.array([5.25, 1.25, 4.0, 0.0]) / 5.25)


def test_constant_norms_give_linear_decay_and_falling_norms_a_warmup():
    n = 50
    np.testing.assert_allclose(refine(np.full(n, 2.0)), (n - 1 - np.arange(n)) / (n - 1), rtol=1e-12)
    eta = refine(np.linspace(10.0, 1.0, n), width=0.02)   # large early gradients: a small early lr
    assert eta[0] < 0.1 and eta.argmax() > n // 2 and eta[-1] == 0.0


def test_median_filter_removes_a_spike():
    g = np.ones(10)
    g[4] = 100.0
    np.testing.assert_allclose(refine(g, width=0.3), refine(np.ones(10), width=0.3))


def test_bad_norms_are_rejected():
    for bad in ([1.0, np.nan, 1.0], [1.0, 0.0, 1.0], [1.0]):
        with pytest.raises(ValueError, match="refine"):
            refine(bad)


def test_load_from_metrics_jsonl_interpolates_logged_steps(tmp_path):
    # Records close chunks of 10 steps: the record at step s carries the norm of step s − 1.
    path = tmp_path / "metrics.jsonl"
    with open(path, "w") as f:
        for s, g in ((10, 1.0), (20, 3.0), (30, 2.0)):
            f.write(json.dumps({"step": s, "grad_norm": g}) + "\n")
        f.write(json.dumps({"step": 0, "train_loss": 1.0}) + "\n")
    g = load_grad_norms(str(path))
    assert g.shape == (30,)
    np.testing.assert_allclose(g[[9, 14, 19, 29]], [1.0, 2.0, 3.0, 2.0])
    np.testing.assert_allclose(g[:9], 1.0)     # before the first record: held constant
