"""What a run is configured by: every section's defaults put together, and the checks run in a fixed order.

    config = base_config()       # sections from their owners: data, model, loss, optim, curvature, checkpoint, mesh
    validate(config)             # ConfigError naming the first bad key, before any data is loaded

Each ingredient owns its section (``default_config()`` and ``check(config)`` beside the code that reads it); the
``train`` and ``sweep`` sections belong to the drivers and are defined here, below them. Unknown keys and wrong
types never reach ``validate``: configs are locked ConfigDicts built from ``base_config()``, and ml_collections
rejects an unknown key (suggesting the close match) or a value of the wrong type when it is set.
"""
from __future__ import annotations

import math

import ml_collections

from jaxlab import data, losses, mesh, models, optim
from jaxlab.checkpoint import settings as checkpoint_settings
from jaxlab.config import ConfigError, get_path, require, require_finite
from jaxlab.curvature import tracker
from jaxlab.grid import parse_axes

ConfigDict = ml_collections.ConfigDict


def train_config() -> ConfigDict:
    return ConfigDict(dict(
        steps=1000,
        batch_size=0,          # 0 = full batch (gradient descent)
        log_every=10,          # steps per jitted chunk; one metrics record per chunk
        eval_every=0,          # 0 = evaluate the test set at every logged step; else every k steps
        eval_examples=0,       # 0 = the whole train/test sets are evaluated; else a fixed subset of that size
        divergence_factor=1e4, # a run whose loss exceeds this × its initial loss is frozen and flagged
        progress=True,
    ))


def sweep_config() -> ConfigDict:
    return ConfigDict(dict(
        seeds=1,               # seeds config.seed, config.seed + 1, ... for every grid point
        axes="",               # grid over config paths, e.g. "optim.lr=0.01,0.02;optim.weight_decay=0,1e-3"
        chunk_size=0,          # most runs per device in one vmapped program; 0 = from memory_budget_mb
        memory_budget_mb=0.0,  # per device; 0 = 80% of device memory where reported (GPU/TPU), else no limit
    ))


def base_config() -> ConfigDict:
    """Every key jaxlab understands, with its default. Experiment configs override these (and may add sections
    of their own before the config is locked)."""
    c = ConfigDict()
    c.seed = 0
    c.data = data.default_config()
    c.model = models.default_config()
    c.loss = losses.default_config()
    c.optim = optim.default_optim_config()
    c.train = train_config()
    c.curvature = tracker.default_config()
    c.checkpoint = checkpoint_settings.default_config()
    c.sweep = sweep_config()
    c.mesh = mesh.default_config()
    return c


def check_train(config):
    t = config.train
    require(t.steps > 0, "train.steps", t.steps, "must be > 0")
    require(t.batch_size >= 0, "train.batch_size", t.batch_size, "must be >= 0 (0 = full batch)")
    require(t.log_every > 0, "train.log_every", t.log_every, "must be > 0")
    require(t.eval_every >= 0, "train.eval_every", t.eval_every, "must be >= 0")
    require(t.eval_examples >= 0, "train.eval_examples", t.eval_examples, "must be >= 0")
    require(t.divergence_factor >= 0, "train.divergence_factor", t.divergence_factor, "must be >= 0 (0 = off)")
    n = data.train_size(config.data)
    if n is not None:  # checked again by make_train once the data is loaded (text files)
        require(t.batch_size <= n, "train.batch_size", t.batch_size, f"larger than the {n} training examples")
    if t.eval_every:
        require(t.eval_every % t.log_every == 0, "train.eval_every", t.eval_every,
                f"must be a multiple of train.log_every={t.log_every}")


def check_sweep(config):
    s = config.sweep
    require(s.seeds >= 1, "sweep.seeds", s.seeds, "must be >= 1")
    require(s.chunk_size >= 0, "sweep.chunk_size", s.chunk_size, "must be >= 0 (0 = from the memory budget)")
    require(s.memory_budget_mb >= 0, "sweep.memory_budget_mb", s.memory_budget_mb,
            "must be >= 0 (0 = 80% of device memory where the backend reports it, else no limit)")
    if s.axes:
        for path, values in parse_axes(s.axes, config).items():
            if path.startswith("sweep."):
                raise ConfigError(f"config.sweep.axes: {path!r} cannot be swept")
            for v in values:
                _check_axis_value(path, get_path(config, path), v)
        # Each point's values are validated by jaxlab.sweep.plan (before any compute), not here: studies that
        # read sweep.axes their own way may skip combinations (e.g. a weight decay with wd_variant="none").


def _check_axis_value(path: str, current, value):
    """A swept value has the type of the key it replaces (ints may stand for floats; a string for a regex tuple)."""
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
            isinstance(current, float) or isinstance(value, int))
    elif isinstance(current, (tuple, list)):
        ok = isinstance(value, (tuple, list, str))
    else:
        ok = isinstance(value, type(current))
    if not ok:
        raise ConfigError(f"config.sweep.axes: {path}={value!r}: expected {type(current).__name__} "
                          f"like the config's {current!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config.sweep.axes: {path}={value!r}: must be a finite number")


_passed: list[str] = []   # the JSON of the last config that passed every check


def validate(config) -> ConfigDict:
    """Run every section's checks, in this order; raise ConfigError naming the first bad key. -> config.
    Every number must be finite, first of all.

    Each entry point (the command line, ``run``, ``sweep``) calls it, yet a config is checked once: a config equal
    to the last one that passed (same JSON) is returned at once."""
    key = config.to_json_best_effort(sort_keys=True)
    if _passed and _passed[0] == key:
        return config
    require_finite(config)
    data.check(config)
    models.check(config)
    losses.check(config)
    optim.check_optim(config.optim, config.train.steps)
    check_train(config)
    tracker.check(config, optim.declaration(config.optim))
    checkpoint_settings.check(config)
    check_sweep(config)
    mesh.check(config)
    _passed[:] = [key]
    return config
