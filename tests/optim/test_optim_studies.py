"""The vmapped runner reproduces jaxlab.train.run lane by lane; the studies run end to end on a tiny config."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.optim_studies import run_points
from experiments.schedules import schedule_study
from experiments.weight_decay_variants import weight_decay_study
from jaxlab.config import ConfigError
from jaxlab.sweep.plan import point_numbers
from jaxlab.train import run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_vmapped_runs_equal_separate_runs(tiny_config):
    c = tiny_config
    c.train.steps, c.train.batch_size = 20, 32
    c.optim.name, c.optim.wd_variant = "momentum", "l2"
    batched = run_points(c, {"optim.lr": [1e-2, 3e-2], "optim.weight_decay": [0.0, 0.1]}, seeds=[0, 1])
    assert [r.point for r in batched] == [{"optim.lr": lr, "optim.weight_decay": wd}
                                          for lr in (1e-2, 3e-2) for wd in (0.0, 0.1)]
    for res in batched[3:]:  # the last point: lanes 6 and 7 of the batch
        assert res.per_step["grad_norm"].shape == (2, 20)
        for seed, records in zip(res.seeds, res.records):
            single = run(c, seed, hp=point_numbers(c, res.point)).records
            assert [r["step"] for r in records] == [r["step"] for r in single]
            for a, b in zip(records, single):
                for k in ("train_loss", "test_accuracy", "param_norm", "grad_norm", "param_norm/Dense_0"):
                    if k in b:
                        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_weight_decay_study_end_to_end(tiny_config, tmp_path):
    c = tiny_config
    c.train.steps = 20
    c.sweep.seeds = 2
    c.sweep.axes = "optim.wd_variant=none,independent;optim.weight_decay=0.01,0.1;optim.lr=0.05,0.1"
    out = weight_decay_study(c, str(tmp_path))
    # none: one point per lr; independent: 2 λ × 2 lr, run with λ·optim.lr
    assert [(r["variant"], r["lr"], r["weight_decay"]) for r in out["rows"]] == [
        ("none", 0.05, 0.0), ("none", 0.1, 0.0), ("independent", 0.05, 0.01), ("independent", 0.05, 0.1),
        ("independent", 0.1, 0.01), ("independent", 0.1, 0.1)]
    assert out["rows"][3]["weight_decay_used"] == pytest.approx(0.1 * c.optim.lr)
    assert all(np.isfinite(r["test_accuracy_mean"]) and r["test_accuracy_std"] >= 0 for r in out["rows"])
    for f in ("summary.json", "results.md", "metrics.jsonl", "weight_decay_variants.png"):
        assert os.path.exists(tmp_path / f), f
    with open(tmp_path / "metrics.jsonl") as f:
        runs = {json.dumps(json.loads(line)["run"], sort_keys=True) for line in f}
    assert len(runs) == 6 * 2


def test_schedule_study_refines_from_the_source_run(tiny_config, tmp_path):
    c = tiny_config
    c.train.steps = 30
    c.optim.schedule.name = "linear"
    c.sweep.seeds = 2
    c.sweep.axes = "optim.schedule.name=refined"
    out = schedule_study(c, str(tmp_path))
    assert [r["schedule"] for r in out["rows"]] == ["refined", "linear"]
    norms = np.load(out["refined_from"]["grad_norms"])
    assert norms.shape == (30,) and np.all(norms > 0)
    with open(tmp_path / "lr_curves.json") as f:
        curves = json.load(f)
    assert curves["refined"][-1] == 0.0 and max(curves["refined"]) == pytest.approx(c.optim.lr, rel=1e-5)


def test_study_rejects_axes_it_cannot_sweep(tiny_config):
    tiny_config.sweep.axes = "optim.wd_variant=l2;model.widths=(8,)"
    with pytest.raises(ConfigError, match="model.widths"):
        weight_decay_study(tiny_config)


def test_cli_fails_before_compute_on_a_bad_value(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.weight_decay_variants", f"--workdir={tmp_path}",
                           "--config.optim.schedule.warmup_steps=5000"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}, timeout=120)
    assert proc.returncode == 2 and "optim.schedule.warmup_steps=5000" in proc.stderr
    assert not os.path.exists(tmp_path / "metrics.jsonl")
