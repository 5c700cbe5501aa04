"""Config schema and validation.

Every experiment config starts from :func:`base_config` and overrides fields, so the schema is the
base config itself: an unknown key, a wrong type or an out-of-range value raises :class:`ConfigError`
naming the key, before any data is loaded or any array is computed.

Subsystems contribute checks by registering a function on their section with :func:`register_check`.
"""
from __future__ import annotations

import difflib
from typing import Any, Callable

import ml_collections

ConfigDict = ml_collections.ConfigDict

# Sections whose keys are free-form (a user adds entries), so they are not matched against the schema.
_FREE_FORM: set[str] = set()


class ConfigError(ValueError):
    """A config key or value is invalid; the message names the key."""


def base_config() -> ConfigDict:
    """Every key jaxlab understands, with its default. Experiment configs override these."""
    from jaxlab.optim import default_optim_config  # late import: optim registers its own fields

    c = ConfigDict()
    c.seed = 0

    c.data = ConfigDict(dict(
        name="mnist1d",        # mnist1d | cifar10 | text | mqar
        num_train=0,           # 0 = all training examples, else the first num_train
        num_test=0,            # 0 = all test examples
        standardize=True,      # per-feature (mnist1d) / per-channel (cifar10) standardisation from train stats
        path="",               # cifar10: directory with the python batches; text: a text file
        seq_len=128,           # text / mqar: tokens per example
        vocab_size=64,         # mqar: vocabulary size
        num_kv_pairs=8,        # mqar: key-value pairs per sequence
        num_examples=4096,     # mqar: training sequences (test set is a quarter of that)
        cache_dir="",          # where generated data is cached ("" = $JAXLAB_CACHE or ~/.cache/jaxlab)
    ))

    c.model = ConfigDict(dict(
        name="mlp",            # mlp | cnn | transformer
        widths=(200, 200),     # mlp: hidden widths
        activation="tanh",     # tanh | relu | gelu | elu | softplus | silu | identity
        use_bias=True,
        init="lecun",          # lecun | torch | he | xavier
        channels=(32, 32),     # cnn: channels of each conv-activation-pool block
        kernel_size=3,         # cnn
        pool="max",            # cnn: max | avg | none
        d_model=128,           # transformer
        num_layers=2,
        num_heads=4,
        mlp_ratio=4,
        attention="softmax",   # softmax | linear | retention | gla  (see jaxlab.models.attention)
        max_len=2048,
        dtype="float32",       # activations dtype for the transformer (params stay float32)
    ))

    c.loss = ConfigDict(dict(name="cross_entropy", z_loss=0.0))  # mse | cross_entropy
    c.optim = default_optim_config()

    c.train = ConfigDict(dict(
        steps=1000,
        batch_size=0,          # 0 = full batch (gradient descent)
        log_every=10,          # steps per jitted chunk; one metrics record per chunk
        eval_every=0,          # 0 = evaluate the test set at every logged step; else every k steps
        eval_examples=0,       # 0 = the whole train/test sets are evaluated; else a fixed subset of that size
        divergence_factor=1e4, # a run whose loss exceeds this × its initial loss is frozen and flagged
        progress=True,
    ))

    c.curvature = ConfigDict(dict(
        every=0,               # 0 = off; else measure every k steps (a multiple of train.log_every)
        # what to record, names of jaxlab.curvature.tracker.QUANTITIES: sharpness | eig_gap | trace | ntk |
        # preconditioned | alignment | layer_shares (adam adds preconditioned to sharpness by itself)
        quantities=("sharpness",),
        num_examples=0,        # curvature set: the first n evaluation examples; 0 = the whole evaluation set
        num_iters=20,          # Lanczos iterations (full reorthogonalisation) per measurement
        k=1,                   # top-k Hessian eigenvalues (eig_gap needs 2)
        chunk_size=0,          # examples per HVP pass (bounds activation memory); 0 = the whole set at once
        trace_samples=10,      # Hutchinson probe vectors for "trace"
        seed=0,                # the first Lanczos start vector's key (deterministic)
        warm_start=True,       # start each measurement's Lanczos from the previous top-k eigenvectors
    ))
    c.checkpoint = ConfigDict(dict(
        every=0,               # 0 = off; else save every k steps (a multiple of train.log_every) and the last step
        keep_last=3,           # retention: the latest N checkpoints (0 = all) ...
        keep_every=0,          # ... plus every step that is a multiple of this (0 = none): the merge window's interval
        async_save=True,       # orbax writes in a background thread while training goes on
        study=ConfigDict(dict( # experiments.wsm only (jaxlab.checkpoint.study): merges made after training
            schedules="constant,wsd,cosine",   # runs compared at equal budget; constant = warmup-stable (merged)
            intervals=(20, 40, 80, 160),       # checkpoint intervals I of the merge grid (multiples of every)
            counts=(2, 3, 5, 9, 17),           # numbers N of merged checkpoints; duration D = (N-1)*I
            grid_scheme="linear",              # merge scheme of the grid (a WSM shape or uniform)
            compare_duration=400,              # D of the scheme comparison (all WSM shapes, uniform, EMA)
            ema_decays=(0.9, 0.97),            # EMA decay per checkpoint, over the whole run
        )),
    ))
    c.sweep = ConfigDict(dict(
        seeds=1,               # seeds config.seed, config.seed + 1, ... for every grid point
        axes="",               # grid over config paths, e.g. "optim.lr=0.01,0.02;optim.weight_decay=0,1e-3"
        chunk_size=0,          # most runs per device in one vmapped program; 0 = from memory_budget_mb
        memory_budget_mb=0.0,  # per device; 0 = 80% of device memory where reported (GPU/TPU), else no limit
    ))
    return c


# --------------------------------------------------------------------------------------------------
# checks

_CHECKS: list[tuple[str, Callable[[Any], None]]] = []


def register_check(section: str):
    """Decorator: ``fn(config)`` validates ``config.<section>`` and raises ConfigError on bad values."""

    def deco(fn):
        _CHECKS.append((section, fn))
        return fn

    return deco


def fail(key: str, value: Any, why: str):
    raise ConfigError(f"config.{key}={value!r}: {why}")


def require(cond: bool, key: str, value: Any, why: str):
    if not cond:
        fail(key, value, why)


def require_choice(key: str, value: Any, choices):
    if value not in choices:
        hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        fail(key, value, f"must be one of {sorted(choices)}{extra}")


def get_path(config: ConfigDict, path: str):
    node = config
    for part in path.split("."):
        if not isinstance(node, (ConfigDict, dict)) or part not in node:
            raise ConfigError(f"config.{path}: no such key")
        node = node[part]
    return node


def _check_schema(cfg, ref, prefix: str):
    for key in cfg.keys():
        path = f"{prefix}{key}"
        if path in _FREE_FORM:
            continue
        if key not in ref:
            hint = difflib.get_close_matches(key, list(ref.keys()), n=1)
            extra = f" (did you mean {prefix}{hint[0]}?)" if hint else ""
            raise ConfigError(f"config.{path}: unknown key{extra}")
        val, rval = cfg[key], ref[key]
        if isinstance(rval, ConfigDict):
            if not isinstance(val, (ConfigDict, dict)):
                fail(path, val, "must be a section (ConfigDict)")
            _check_schema(val, rval, path + ".")
        elif rval is not None and val is not None:
            ok = isinstance(val, type(rval)) or (isinstance(rval, float) and isinstance(val, int)) or (
                isinstance(rval, (tuple, list)) and isinstance(val, (tuple, list)))
            if isinstance(rval, bool) != isinstance(val, bool) and not isinstance(rval, (tuple, list)):
                ok = False
            if isinstance(rval, (str, tuple, list)) and isinstance(val, (str, tuple, list)):
                ok = True  # e.g. optim.wd_mask: "default" or a tuple of patterns
            if not ok:
                fail(path, val, f"expected {type(rval).__name__}, got {type(val).__name__}")


def validate(config: ConfigDict) -> ConfigDict:
    """Raise ConfigError naming the first bad key; returns the config for chaining."""
    _check_schema(config, base_config(), "")
    _import_checkers()
    for _, fn in _CHECKS:
        fn(config)
    return config


def _import_checkers():
    # Importing the subsystems registers their checks.
    import jaxlab.data  # noqa: F401
    import jaxlab.losses  # noqa: F401
    import jaxlab.models  # noqa: F401
    import jaxlab.train  # noqa: F401
    import jaxlab.sweep  # noqa: F401
    import jaxlab.checkpoint  # noqa: F401
    import jaxlab.curvature.tracker  # noqa: F401


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts -> {"a.b.c": leaf} (config.json and summaries as flat, dotted paths)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def to_dict(config: ConfigDict) -> dict:
    return config.to_dict()
