"""Validation of the ``optim`` section: every bad name or value fails here, naming its key, before any compute."""
from __future__ import annotations

import os
import re

from jaxlab.config import fail, require, require_choice
import jaxlab.optim.zeroth_order  # noqa: F401  (registers zo_sgd, zo_momentum, zo_adam in OPTIMIZERS)
from jaxlab.optim.bases import OPTIMIZERS
from jaxlab.optim.refine import REFINE_NORMS
from jaxlab.optim.schedules import DECAY_SHAPES, SCHEDULES
from jaxlab.optim.weight_decay import WEIGHT_DECAY

WD_MASKS = ("default", "all", "none")


def _unit(key, value, closed_top=False):
    ok = 0 <= value <= 1 if closed_top else 0 <= value < 1
    require(ok, key, value, "must be in [0, 1]" if closed_top else "must be in [0, 1)")


def _patterns(key, value):
    """A regex string or a tuple of them."""
    items = [(key, value)] if isinstance(value, str) else [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    for k, pattern in items:
        require(isinstance(pattern, str), k, pattern, "must be a regex string")
        try:
            re.compile(pattern)
        except re.error as e:
            fail(k, pattern, f"is not a valid regex ({e})")


def check_optim(cfg, total_steps: int) -> None:
    """Raise jaxlab.config.ConfigError naming the first bad ``optim.*`` key."""
    require_choice("optim.name", cfg.name, OPTIMIZERS)
    require(cfg.lr > 0, "optim.lr", cfg.lr, "must be > 0")
    _unit("optim.momentum", cfg.momentum)
    _unit("optim.b1", cfg.b1)
    _unit("optim.b2", cfg.b2)
    _unit("optim.lion_b2", cfg.lion_b2)
    require(cfg.eps >= 0, "optim.eps", cfg.eps, "must be >= 0")
    require(cfg.weight_decay >= 0, "optim.weight_decay", cfg.weight_decay, "must be >= 0")
    require_choice("optim.wd_variant", cfg.wd_variant, WEIGHT_DECAY)
    if cfg.wd_variant == "none":
        require(cfg.weight_decay == 0, "optim.weight_decay", cfg.weight_decay,
                "is ignored with optim.wd_variant='none'; set it to 0 or choose a variant")
    if cfg.wd_mask not in WD_MASKS:
        _patterns("optim.wd_mask", cfg.wd_mask)
    require(cfg.grad_clip >= 0, "optim.grad_clip", cfg.grad_clip, "must be >= 0 (0 = off)")
    _unit("optim.ema", cfg.ema)
    _patterns("optim.scale_invariant", cfg.scale_invariant)
    # zo_directions is a scan length (static): an int, not a float that happens to be whole.
    require(isinstance(cfg.zo_directions, int) and not isinstance(cfg.zo_directions, bool) and cfg.zo_directions >= 1,
            "optim.zo_directions", cfg.zo_directions, "must be an integer >= 1")
    require(cfg.zo_mu > 0, "optim.zo_mu", cfg.zo_mu, "must be > 0 (the finite-difference radius)")
    check_schedule(cfg.schedule, total_steps)


def check_schedule(s, total_steps: int) -> None:
    key = "optim.schedule."
    require_choice(key + "name", s.name, SCHEDULES)
    require(s.warmup_steps >= 0, key + "warmup_steps", s.warmup_steps, "must be >= 0")
    require(s.warmup_steps < total_steps, key + "warmup_steps", s.warmup_steps,
            f"must be shorter than training (train.steps={total_steps})")
    _unit(key + "end_factor", s.end_factor, closed_top=True)
    require_choice(key + "decay_shape", s.decay_shape, DECAY_SHAPES)
    if s.name == "exponential":
        require(s.end_factor > 0, key + "end_factor", s.end_factor, "must be > 0 for an exponential decay")
    if s.name == "wsd":
        require(0 < s.decay_fraction <= 1, key + "decay_fraction", s.decay_fraction, "must be in (0, 1]")
        decay_steps = round(s.decay_fraction * total_steps)
        require(s.warmup_steps + decay_steps <= total_steps, key + "decay_fraction", s.decay_fraction,
                f"warmup ({s.warmup_steps}) + decay ({decay_steps} steps) exceed train.steps={total_steps}")
    if s.name == "inv_sqrt":
        require(s.timescale >= 0, key + "timescale", s.timescale, "must be >= 0 (0 = warmup_steps)")
        require(s.timescale > 0 or s.warmup_steps > 0, key + "timescale", s.timescale,
                "must be > 0 when warmup_steps = 0")
    if s.name == "cyclic":
        require(s.num_cycles >= 1, key + "num_cycles", s.num_cycles, "must be >= 1")
        length = total_steps / max(s.num_cycles, 1)
        require(s.warmup_steps < length, key + "warmup_steps", s.warmup_steps,
                f"must be shorter than a cycle ({length:g} steps)")
    if s.name == "refined":
        require(s.refine_width > 0, key + "refine_width", s.refine_width, "must be > 0")
        require_choice(key + "refine_norm", s.refine_norm, REFINE_NORMS)
        require(bool(s.refine_path) and os.path.isfile(s.refine_path), key + "refine_path", s.refine_path,
                "must name a file of recorded gradient norms (.npy, .txt or metrics.jsonl)")
        from jaxlab.optim.refine import refined_multiplier_values

        try:
            refined_multiplier_values(s.refine_path, s.refine_width, s.refine_norm)
        except (ValueError, OSError) as e:
            fail(key + "refine_path", s.refine_path, str(e))
