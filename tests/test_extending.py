"""One place per extension: a model, an optimiser, a curvature quantity and an experiment, each added from this
file by its own registration only (docs/extending.md shows the same four), each checked against an independent
reference: a closed-form gradient step, plain SGD at the equivalent learning rate, the tracker's own sharpness, and
the single-run driver."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from jaxlab import optim
from jaxlab.curvature.quantities import QUANTITIES, register_quantity
from jaxlab.models import MODELS, model_config, register_model
from jaxlab.schema import validate
from jaxlab.train import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------------------------ a model

class ToyLinear(nn.Module):
    """x: [B, D] -> x W (no bias), W initialised to ``init_value`` everywhere: a model whose GD step is closed form."""
    num_outputs: int
    init_value: float = 0.01

    @nn.compact
    def __call__(self, x):
        w = self.param("w", nn.initializers.constant(self.init_value), (x.shape[-1], self.num_outputs))
        return x.reshape(x.shape[0], -1) @ w


@pytest.fixture
def toy_model():
    register_model("toy_linear", from_data={"num_outputs": "num_classes"})(ToyLinear)
    yield
    MODELS.pop("toy_linear")


def test_a_model_registered_here_trains_through_its_config_section(toy_model, tiny_config):
    """One full-batch GD step of MSE on x W from W0 = 0.02: W1 = W0 − η xᵀ(x W0 − Y)/N (the loss is ½‖xW − Y‖²
    averaged over examples), in float64 numpy."""
    c = tiny_config
    c.model = model_config("toy_linear", init_value=0.02)
    c.train.steps, c.train.log_every = 1, 1
    validate(c)
    res = run(c, 0, progress=False)
    from jaxlab.data import get_dataset

    ds = get_dataset(c.data)
    x, y = np.asarray(ds.x_train, np.float64), np.eye(ds.num_classes)[ds.y_train]
    w0 = np.full((x.shape[1], ds.num_classes), 0.02)
    w1 = w0 - c.optim.lr * x.T @ (x @ w0 - y) / len(x)
    np.testing.assert_allclose(res.state.params["w"], w1, rtol=2e-5, atol=1e-7)
    assert res.records[0]["train_loss"] == pytest.approx(0.5 * np.mean(np.sum((x @ w0 - y) ** 2, 1)), rel=1e-5)


def test_a_model_section_must_be_its_constructors_arguments(toy_model, tiny_config):
    from jaxlab.config import ConfigError

    with pytest.raises(ConfigError, match="init_value"):
        model_config("toy_linear", widths=(3,))
    tiny_config.model.name = "toy_linear"   # the MLP's arguments left behind
    with pytest.raises(ConfigError, match="model_config\\('toy_linear'"):
        validate(tiny_config)


# ------------------------------------------------------------------------------------------------ an optimiser

@pytest.fixture
def toy_optimizer():
    """SGD whose direction is scaled by the run's ``momentum`` number: η·β·g, so its edge is 2/(ηβ)."""
    optim.register_optimizer("toy_scaled_sgd")(lambda cfg, p: optax.scale(p.momentum))
    optim.register_dynamics("toy_scaled_sgd")(lambda cfg: optim.Declared(threshold=lambda n: 2.0 / (n.lr * n.momentum)))
    yield
    optim.OPTIMIZERS.pop("toy_scaled_sgd")
    optim.DYNAMICS.pop("toy_scaled_sgd")


def test_an_optimiser_registered_here_is_sgd_at_the_scaled_rate_and_tracked(toy_optimizer, tiny_config):
    c = tiny_config
    c.optim.name, c.optim.momentum, c.optim.lr = "toy_scaled_sgd", 0.5, 0.1
    c.train.steps = 20
    c.curvature.every, c.curvature.num_iters = 10, 20
    toy = run(c, 0, progress=False)
    ref = tiny_config.copy_and_resolve_references()
    ref.optim.name, ref.optim.lr, ref.curvature.every = "sgd", 0.05, 0
    sgd = run(ref, 0, progress=False)
    for a, b in zip(jax.tree.leaves(toy.state.params), jax.tree.leaves(sgd.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    thresholds = [r["eos_threshold"] for r in toy.records if "eos_threshold" in r]
    assert thresholds and np.allclose(thresholds, 2.0 / (0.1 * 0.5), rtol=1e-6)


# ------------------------------------------------------------------------------------------------ a quantity

@pytest.fixture
def toy_quantity():
    @register_quantity("toy_step_sharpness", needs_eigs=True)
    def _toy(ctx):
        return {"toy_step_sharpness": ctx.eigvals[0] * ctx.numbers.lr}   # ηλ1: 2 at the edge of stability

    yield
    QUANTITIES.pop("toy_step_sharpness")


def test_a_quantity_registered_here_is_recorded_from_the_shared_eigenpairs(toy_quantity, tiny_config):
    c = tiny_config
    c.train.steps = 20
    c.curvature.every, c.curvature.num_iters = 10, 20
    c.curvature.quantities = ("sharpness", "toy_step_sharpness")
    res = run(c, 0, progress=False)
    measured = [r for r in res.records if "sharpness" in r]
    assert len(measured) == 3
    for r in measured:
        assert r["toy_step_sharpness"] == pytest.approx(r["sharpness"] * c.optim.lr, rel=1e-6)


# ------------------------------------------------------------------------------------------------ an experiment

EXPERIMENT = '''
"""A toy experiment: the grid of its config, the standard outputs."""
from jaxlab import cli
from jaxlab.experiment import run_grid, write_grid_outputs


def main(config, workdir):
    write_grid_outputs(run_grid(config, workdir), workdir)


if __name__ == "__main__":
    cli.main(main, __file__)
'''

CONFIG = '''
"""python toy.py --workdir W"""
from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.num_train, c.data.num_test = 128, 64
    c.model.widths = (8,)
    c.loss.name = "mse"
    c.optim.lr = 0.05
    c.train.steps, c.train.log_every, c.train.progress = 20, 10, False
    c.sweep.axes = "optim.lr=0.05,0.1"
    return c
'''


def test_an_experiment_written_here_runs_from_the_command_line(tmp_path):
    """An experiment is a file with main(config, workdir) and configs/NAME.py; its summary equals separate runs."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "toy.py").write_text(textwrap.dedent(EXPERIMENT))
    (tmp_path / "configs" / "toy.py").write_text(textwrap.dedent(CONFIG))
    workdir = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + str(tmp_path), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(tmp_path / "toy.py"), f"--workdir={workdir}"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert (workdir / "loss_bands.png").stat().st_size > 1000
    spec = importlib.util.spec_from_file_location("toy_config", tmp_path / "configs" / "toy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for row in summary["runs"]:
        single = run(config, row["seed"], hp={"lr": row["optim.lr"]}, progress=False)
        assert row["final_train_loss"] == pytest.approx(single.summary["final_train_loss"], rel=1e-5)
