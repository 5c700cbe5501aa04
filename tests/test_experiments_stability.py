"""The stability experiments end to end on tiny settings (their science is in docs/curvature.md; their pieces are
tested against closed forms in tests/curvature): outputs written, thresholds found by bisection equal the closed
forms, ZO-GD and GD in one zo_eos workdir with their records told apart, and bad stability.* values refused."""
import json
import os
import subprocess
import sys

import pytest

from experiments import step_stability, zo_eos
from experiments.configs.step_stability import get_config as stability_config
from experiments.configs.zo_eos import get_config as zo_config
from jaxlab.config import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(c, steps=20):
    c.data.num_train, c.data.num_test = 128, 64
    c.model.widths = (8,)
    c.train.steps, c.train.log_every, c.train.eval_every, c.train.progress = steps, 10, 20, False
    c.curvature.every = 10
    return c


def test_step_stability_finds_each_closed_form(tmp_path):
    c = _tiny(stability_config())
    c.stability.methods = "sgd,adam"                # heavy ball and Nesterov: tests/curvature/test_step_map.py
    c.stability.arnoldi_iters = 60
    c.stability.bisect_iters = 10                   # a ×2 bracket halved 10 times on log η: ratio to 3.4e-4
    step_stability.check(c)
    step_stability.main(c, str(tmp_path))
    s = json.load(open(tmp_path / "summary.json"))
    for name in ("sgd", "adam_frozen"):
        assert 0.99 <= s["thresholds"][name]["ratio"] <= 1.01, (name, s["thresholds"][name])
    assert s["thresholds"]["adam"]["closed_form"] is None and s["thresholds"]["adam"]["measured"] > 0
    assert set(s["hover"]) == {"sgd", "adam", "adam_frozen"}
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {r["method"] for r in records} == {"sgd", "adam"}
    assert all("step_flip" in r for r in records if r["step"] % 10 == 0)
    for png in ("step_flip.png", "thresholds.png"):
        assert os.path.getsize(tmp_path / png) > 1000


@pytest.mark.parametrize("key, value, message", [
    ("methods", "sgd,adamax", "config.stability.methods='adamax'"),
    ("tolerance", 1.5, "config.stability.tolerance=1.5"),
])
def test_step_stability_bad_values_name_the_key(key, value, message):
    c = stability_config()
    c.stability[key] = value
    with pytest.raises(ConfigError, match=message):
        step_stability.check(c)


def test_step_stability_bad_value_is_one_line_exit_2(tmp_path):
    p = subprocess.run([sys.executable, "-m", "experiments.step_stability", f"--workdir={tmp_path / 'w'}",
                        "--config.stability.methods=sgd,nope"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2 and not os.path.exists(tmp_path / "w")
    assert p.stderr.strip().splitlines()[-1].count("stability.methods") == 1


def test_zo_eos_tags_each_optimizer_and_judges_on_the_plateau_test(tmp_path):
    c = _tiny(zo_config(), steps=30)
    c.curvature.quantities = ("sharpness", "trace", "zo_stability", "zo_dense")
    c.sweep.axes = "optim.lr=0.05"
    zo_eos.main(c, str(tmp_path))
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {r["optimizer"] for r in records} == {"zo_sgd", "sgd"}
    assert all("zo_sharpness" not in r for r in records if r["optimizer"] == "sgd")
    s = json.load(open(tmp_path / "summary.json"))
    claim = s["claim"]["zo_settles_at_boundary_at_largest_lr"]
    assert claim["plateau_verdict"] in ("plateaued", "drifting", "undecided") and isinstance(claim["holds"], bool)
    for png in ("zo_boundary.png", "zo_vs_gd.png"):
        assert os.path.getsize(tmp_path / png) > 1000
