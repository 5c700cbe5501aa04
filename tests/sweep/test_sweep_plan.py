"""Planning: traced vs structural axes, groups, chunk sizes, and config errors before any compute."""
import pytest

from jaxlab import optim
from jaxlab.config import ConfigError
from jaxlab.schema import validate
from jaxlab.grid import parse_axes
from jaxlab.sweep.plan import chunk_sizes, plan, seed_list, traceable

from sweep_testing import sweep_config


@pytest.fixture
def config():
    return sweep_config()


def test_traceable_paths(config):
    assert traceable(config, "optim.lr") and traceable(config, "optim.weight_decay")
    assert traceable(config, "optim.momentum") and traceable(config, "optim.eps")
    assert traceable(config, "optim.schedule.warmup_steps")       # the optimiser traces its schedule numbers
    assert not traceable(config, "optim.name")                    # a string picks the optimiser: structural
    assert not traceable(config, "optim.schedule.refine_width")   # shapes an array at build time: structural
    assert not traceable(config, "model.widths") and not traceable(config, "train.batch_size")


def test_plan_groups_structural_axes_and_orders_runs(config):
    groups, axes = plan(config, seeds=2, axes="model.widths=(8,),(16,16);optim.lr=0.01,0.02")
    assert axes == {"model.widths": [(8,), (16, 16)], "optim.lr": [0.01, 0.02]}
    assert [g.structural for g in groups] == [{"model.widths": (8,)}, {"model.widths": (16, 16)}]
    assert [tuple(g.config.model.widths) for g in groups] == [(8,), (16, 16)]
    runs = [r for g in groups for r in g.runs]
    assert [r.index for r in runs] == list(range(8))              # point-major, then seed
    assert [r.coords for r in runs[:2]] == [{"seed": 0, "model.widths": (8,), "optim.lr": 0.01},
                                            {"seed": 1, "model.widths": (8,), "optim.lr": 0.01}]
    # traced values arrive as hp, with the group's defaults for the other traced paths
    assert runs[2].numbers == optim.Numbers(lr=0.02, weight_decay=0.0)


def test_plan_all_traced_is_one_group(config):
    groups, _ = plan(config, seeds=[3, 5], axes={"optim.lr": [0.1, 0.2], "optim.weight_decay": [0.0, 1e-3]})
    assert len(groups) == 1 and len(groups[0].runs) == 8
    assert sorted({r.seed for r in groups[0].runs}) == [3, 5]


@pytest.mark.parametrize("runs,cap,devices,expected", [
    (10, None, 1, (1, 10)), (10, 4, 1, (3, 4)), (9, 8, 1, (2, 5)), (6, None, 4, (1, 8)),
    (10, 4, 4, (3, 4)), (3, 1, 2, (2, 2)), (1, None, 4, (1, 4)),
])
def test_chunk_sizes_balanced_and_padded_to_devices(runs, cap, devices, expected):
    num, size = chunk_sizes(runs, cap, devices)
    assert (num, size) == expected
    assert size % devices == 0 and num * size >= runs and (num - 1) * size < runs


def test_parse_axes_keeps_tuple_values():
    assert parse_axes("model.widths=(64,64),(128,);optim.name=sgd,adam") == {
        "model.widths": [(64, 64), (128,)], "optim.name": ["sgd", "adam"]}


@pytest.mark.parametrize("field,value,match", [
    ("axes", "optim.lrr=0.1", "optim.lrr"),
    ("axes", "optim.lr", "not of the form"),
    ("axes", "sweep.seeds=1,2", "cannot be swept"),
    ("seeds", 0, "sweep.seeds"),
    ("chunk_size", -1, "sweep.chunk_size"),
])
def test_bad_sweep_config_names_the_key(config, field, value, match):
    config.sweep[field] = value
    with pytest.raises(ConfigError, match=match):
        validate(config)


@pytest.mark.parametrize("axes,match", [("optim.lr=0.1,-1", "optim.lr=-1"), ("model.name=mlp,nope", "model.name"),
                                        ("model.widths=(8,),(0,)", r"model.widths\[0\]")])
def test_bad_grid_point_fails_in_plan_naming_point_and_key(config, axes, match):
    with pytest.raises(ConfigError, match=match) as e:
        plan(config, seeds=1, axes=axes)
    assert "grid point" in str(e.value)


def test_seed_list(config):
    config.seed = 7
    assert seed_list(config, 3) == [7, 8, 9]
    assert seed_list(config, [1, 4]) == [1, 4]
    with pytest.raises(ConfigError):
        seed_list(config, [1, 1])
