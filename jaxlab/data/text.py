"""Character-level language modelling from any UTF-8 text file.

x: [N, T] int32 characters, y: [N, T] the next characters. Windows are non-overlapping; the last 10% of the
file (by characters) is the test split, so train and test never share text.
"""
from __future__ import annotations

import os

import numpy as np

from jaxlab.data.dataset import Dataset, register_dataset
from jaxlab.config import ConfigError


def check_path(path: str):
    if not path:
        raise ConfigError("config.data.path='': data.name='text' needs a text file, e.g. --config.data.path=README.md")
    if not os.path.isfile(path):
        raise ConfigError(f"config.data.path={path!r}: no such file")


def _windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    n = (len(ids) - 1) // seq_len
    if n < 1:
        return np.zeros((0, seq_len), np.int32), np.zeros((0, seq_len), np.int32)
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1: n * seq_len + 1].reshape(n, seq_len)
    return x, y


@register_dataset("text", check=lambda cfg: check_path(cfg.path))
def load(cfg) -> Dataset:
    check_path(cfg.path)
    with open(cfg.path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int32, count=len(text))
    split = int(0.9 * len(ids))
    x, y = _windows(ids[:split], cfg.seq_len)
    xt, yt = _windows(ids[split:], cfg.seq_len)
    if len(x) == 0 or len(xt) == 0:
        raise ConfigError(f"config.data.path={cfg.path!r}: {len(text)} characters is too short for "
                          f"data.seq_len={cfg.seq_len} (need > {10 * (cfg.seq_len + 1)})")
    perm = np.random.default_rng(0).permutation(len(x))  # shuffle windows once so subsets are random
    return Dataset("text", x[perm], y[perm], xt, yt, num_classes=len(chars), task="lm",
                   meta={"vocab": "".join(chars)})
