"""Config checks: bad values name their key; locked configs reject unknown keys and wrong types; workdirs keep results."""
import pytest

from jaxlab.config import ConfigError
from jaxlab.schema import validate
from jaxlab.io import WorkdirExistsError, prepare_workdir


@pytest.mark.parametrize("path,value,match", [
    ("optim.lr", 0.0, "optim.lr"),
    ("optim.lr", -1.0, "optim.lr"),
    ("model.widths", (200, 0), r"model.widths\[1\]"),
    ("train.batch_size", -4, "train.batch_size"),
    ("train.steps", 0, "train.steps"),
    ("model.activation", "tahn", "did you mean 'tanh'"),
    ("data.name", "mnist", "data.name"),
    ("loss.name", "l2", "loss.name"),
    ("optim.weight_decay", -0.1, "optim.weight_decay"),
    ("optim.lr", float("inf"), "config.optim.lr=inf: must be a finite number"),
    ("train.divergence_factor", float("nan"), "config.train.divergence_factor=nan: must be a finite number"),
])
def test_bad_values_name_the_key(tiny_config, path, value, match):
    section, key = path.split(".")
    with tiny_config.unlocked():
        tiny_config[section][key] = value
    with pytest.raises(ConfigError, match=match):
        validate(tiny_config)


def test_unknown_key_is_rejected_with_suggestion(tiny_config):
    """A locked config (as the CLI locks every experiment's) refuses a key it does not have, naming the close
    match (ml_collections' own check, on assignment: validate() never sees the typo)."""
    tiny_config.lock()
    with pytest.raises(AttributeError, match='Did you mean "weight_decay" instead of "wieght_decay"'):
        tiny_config.optim.wieght_decay = 0.1
    with pytest.raises(KeyError, match='Did you mean "weight_decay" instead of "wieght_decay"'):
        tiny_config.update_from_flattened_dict({"optim.wieght_decay": 0.1})
    assert "wieght_decay" not in tiny_config.optim
    validate(tiny_config)  # nothing was added: the config is as it was


def test_wrong_type_is_rejected(tiny_config):
    """ConfigDict's own type safety, on assignment (attribute or flattened override, the CLI's path)."""
    tiny_config.lock()
    with pytest.raises(TypeError, match="steps"):
        tiny_config.train.steps = "many"
    with pytest.raises(TypeError, match="steps"):
        tiny_config.update_from_flattened_dict({"train.steps": "many"})
    with pytest.raises(TypeError, match="widths"):
        tiny_config.model.widths = 3
    with pytest.raises(TypeError, match="lr"):
        tiny_config.optim.lr = "fast"
    assert tiny_config.train.steps == 40 and tiny_config.optim.lr == 0.05 and tiny_config.model.widths == (32, 32)
    validate(tiny_config)


def test_batch_larger_than_dataset(tiny_config):
    from jaxlab.train import run

    tiny_config.train.batch_size = 10_000
    with pytest.raises(ConfigError, match="train.batch_size=10000"):
        run(tiny_config, 0)


def test_workdir_with_results_is_not_overwritten(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(WorkdirExistsError, match="--overwrite"):
        prepare_workdir(str(tmp_path))
    assert (tmp_path / "summary.json").read_text() == "{}"
    prepare_workdir(str(tmp_path), overwrite=True)
    assert not (tmp_path / "summary.json").exists()


# Command-line errors (one line, exit 2, nothing written) are tested in tests/test_cli_errors.py.


def test_flags_that_a_grid_also_sets_are_named_with_the_fix():
    """axis_conflict reads every grid of the config (sweep.axes and an experiment's own *_axes), and its suggested
    grid, given as the flag, parses to the one value."""
    from experiments.configs.mqar_recall import get_config
    from jaxlab.grid import axis_conflict, grids, parse_axes

    config = get_config()
    assert [path for path, _ in grids(config)] == ["recall.softmax_axes", "sweep.axes"]
    assert axis_conflict(config, {"model.mlp_ratio": 4, "sweep.axes": config.sweep.axes}) is None
    msg = axis_conflict(config, {"optim.lr": 0.05})
    assert msg.startswith("--config.optim.lr=0.05 conflicts with config.recall.softmax_axes, which sets "
                          "optim.lr=0.003,0.01: drop the flag, or give the grid that one value: "
                          '--config.recall.softmax_axes="model.num_heads=2;optim.lr=0.05'), msg
    fixed = msg.split('--config.recall.softmax_axes="', 1)[1].rstrip('"')
    assert parse_axes(fixed, config)["optim.lr"] == [0.05]
    assert "config.sweep.axes, which sets model.d_model=8,16,32" in axis_conflict(config, {"model.d_model": 64})
