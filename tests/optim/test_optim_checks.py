"""Bad optimiser settings fail in validation with the key named, before any data or compute."""
import numpy as np
import pytest

from jaxlab.config import ConfigError
from jaxlab.schema import validate
from jaxlab.optim import make_optimizer

# tiny_config has train.steps = 40.
BAD = [
    ({"name": "adamw"}, "optim.name.*did you mean 'adam'"),
    ({"weight_decay": -0.1}, r"optim.weight_decay=-0.1: must be >= 0"),
    ({"wd_variant": "decopled"}, "optim.wd_variant.*did you mean 'decoupled'"),
    ({"wd_variant": "none", "weight_decay": 0.1}, "optim.weight_decay=0.1: is ignored"),
    ({"wd_mask": "kernel("}, "optim.wd_mask='kernel\\(': is not a valid regex"),
    ({"momentum": 1.0}, "optim.momentum"),
    ({"b2": 1.5}, "optim.b2"),
    ({"eps": -1e-8}, "optim.eps"),
    ({"grad_clip": -1.0}, "optim.grad_clip"),
    ({"ema": 1.0}, "optim.ema"),
    ({"scale_invariant": "("}, "optim.scale_invariant"),
    ({"schedule.name": "cosin"}, "optim.schedule.name.*did you mean 'cosine'"),
    ({"schedule.warmup_steps": 40}, "optim.schedule.warmup_steps=40: must be shorter than training"),
    ({"schedule.warmup_steps": -1}, "optim.schedule.warmup_steps"),
    ({"schedule.end_factor": 1.5}, "optim.schedule.end_factor"),
    ({"schedule.decay_shape": "cos"}, "optim.schedule.decay_shape"),
    ({"schedule.name": "exponential", "schedule.end_factor": 0.0}, "optim.schedule.end_factor=0.0: must be > 0"),
    ({"schedule.name": "wsd", "schedule.decay_fraction": 0.0}, "optim.schedule.decay_fraction"),
    ({"schedule.name": "wsd", "schedule.warmup_steps": 20, "schedule.decay_fraction": 0.6},
     "warmup \\(20\\) \\+ decay \\(24 steps\\) exceed"),
    ({"schedule.name": "inv_sqrt"}, "optim.schedule.timescale=0.0: must be > 0 when warmup_steps = 0"),
    ({"schedule.name": "cyclic", "schedule.num_cycles": 4, "schedule.warmup_steps": 10},
     "must be shorter than a cycle \\(10 steps\\)"),
    ({"schedule.name": "cyclic", "schedule.num_cycles": 0}, "optim.schedule.num_cycles"),
    ({"schedule.name": "refined", "schedule.refine_path": "/nonexistent/g.npy"}, "optim.schedule.refine_path"),
]


def _set(config, overrides):
    with config.unlocked():
        for path, value in overrides.items():
            node = config.optim
            *parents, leaf = path.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value


@pytest.mark.parametrize("overrides,match", BAD, ids=[str(o) for o, _ in BAD])
def test_bad_optim_settings_name_the_key(tiny_config, overrides, match):
    _set(tiny_config, overrides)
    with pytest.raises(ConfigError, match=match):
        validate(tiny_config)


def test_refined_with_unusable_norms_fails_in_validation(tiny_config, tmp_path):
    import numpy as np

    path = str(tmp_path / "g.npy")
    np.save(path, np.array([1.0, np.nan, 2.0]))
    _set(tiny_config, {"schedule.name": "refined", "schedule.refine_path": path})
    with pytest.raises(ConfigError, match="refine_path.*finite"):
        validate(tiny_config)


def test_run_fails_before_any_compute(tiny_config, monkeypatch):
    import jaxlab.data
    from jaxlab.train import run

    monkeypatch.setattr(jaxlab.data, "get_dataset", lambda cfg: pytest.fail("data loaded before validation"))
    _set(tiny_config, {"weight_decay": -0.1})
    with pytest.raises(ConfigError, match="optim.weight_decay"):
        run(tiny_config, 0)


def test_unknown_hp_key_is_rejected(tiny_config):
    with pytest.raises(ConfigError, match=r"\['wd'\]"):
        make_optimizer(tiny_config.optim, 40, {"wd": 0.1})


def test_good_configs_pass(tiny_config):
    for overrides in ({"name": "lion", "wd_variant": "cautious", "weight_decay": 0.1},
                      {"wd_mask": "kernel$|embedding", "scale_invariant": "Dense_1/kernel"},
                      {"schedule.name": "wsd", "schedule.warmup_steps": 4, "schedule.decay_fraction": 0.5}):
        _set(tiny_config, overrides)
        validate(tiny_config)


def test_numbers_are_the_numeric_optim_fields_and_resolve_from_the_config():
    """optim.Numbers has a field for every number of the optim section but the two that shape the program (a loop
    length, an array size); resolve takes each from the config unless the traced part gives it."""
    from jaxlab.optim import FIELDS, Numbers, default_optim_config, resolve, traced_numbers

    cfg = default_optim_config()
    flat = {**{k: v for k, v in cfg.items() if k != "schedule"}, **{f"schedule.{k}": v for k, v in cfg.schedule.items()}}
    numeric = {k for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert set(FIELDS) == numeric - {"zo_directions", "schedule.refine_width"}
    n = resolve(cfg, Numbers(lr=0.3))
    assert n.lr == 0.3 and n.b1 == cfg.b1 and n.schedule.warmup_steps == cfg.schedule.warmup_steps
    assert resolve(cfg, n) == n
    hp = traced_numbers(cfg, {"b1": 0.5})
    assert hp.b1.dtype == np.float32 and float(hp.b1) == 0.5 and float(hp.lr) == np.float32(cfg.lr)
    assert hp.momentum is None and hp.schedule.warmup_steps is None
