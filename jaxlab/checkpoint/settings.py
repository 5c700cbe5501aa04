"""The ``checkpoint`` config section: its defaults and checks."""
from __future__ import annotations

import ml_collections

from jaxlab.config import require


def default_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        every=0,               # 0 = off; else save every k steps (a multiple of train.log_every) and the last step
        keep_last=3,           # retention: the latest N checkpoints (0 = all) ...
        keep_every=0,          # ... plus every step that is a multiple of this (0 = none): the merge window's interval
        async_save=True,       # orbax writes in a background thread while training goes on
    ))


def check(config):
    """Raise ConfigError naming the first bad ``checkpoint.*`` key."""
    c, log_every = config.checkpoint, config.train.log_every
    require(c.every >= 0, "checkpoint.every", c.every, "must be >= 0 (0 = off)")
    if c.every:
        require(c.every % log_every == 0, "checkpoint.every", c.every,
                f"must be a multiple of train.log_every={log_every}")
    require(c.keep_last >= 0, "checkpoint.keep_last", c.keep_last, "must be >= 0 (0 = keep all)")
    require(c.keep_every >= 0, "checkpoint.keep_every", c.keep_every, "must be >= 0 (0 = none)")
    if c.every and c.keep_every:
        require(c.keep_every % c.every == 0, "checkpoint.keep_every", c.keep_every,
                f"must be a multiple of checkpoint.every={c.every}")
