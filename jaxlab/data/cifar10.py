"""CIFAR-10 from a local directory of the standard python batches, or tensorflow-datasets when installed.

x: [N, 32, 32, 3] float32 (per-channel standardised), y: [N] int32.
"""
from __future__ import annotations

import os
import pickle

import numpy as np

from jaxlab.data.dataset import Dataset, register_dataset, standardize
from jaxlab.config import ConfigError

HOW_TO = (
    "CIFAR-10 was not found. Either\n"
    "  (a) download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it\n"
    "      (tar xzf cifar-10-python.tar.gz) and pass --config.data.path=/path/to/cifar-10-batches-py, or\n"
    "      set JAXLAB_CIFAR10=/path/to/cifar-10-batches-py; or\n"
    "  (b) pip install tensorflow-datasets (it downloads CIFAR-10 on first use)."
)
_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def find(path: str) -> str | None:
    """The directory holding the python batches, None if tensorflow-datasets will serve, else ConfigError."""
    for cand in (path, os.environ.get("JAXLAB_CIFAR10", "")):
        if not cand:
            continue
        for d in (cand, os.path.join(cand, "cifar-10-batches-py")):
            if all(os.path.isfile(os.path.join(d, f)) for f in _FILES):
                return d
        if cand == path:
            raise ConfigError(f"config.data.path={path!r}: no CIFAR-10 python batches there "
                              f"(expected {', '.join(_FILES)}).\n{HOW_TO}")
    try:
        import tensorflow_datasets  # noqa: F401
        return None
    except ImportError:
        raise ConfigError("config.data.name='cifar10': " + HOW_TO) from None


def _read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    # The official distribution is pickled numpy arrays; we read only files the user pointed us to.
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(d[b"labels"], np.int32)


@register_dataset("cifar10", train_size=lambda cfg: 50_000, check=lambda cfg: find(cfg.path))
def load(cfg) -> Dataset:
    d = find(cfg.path)
    if d is None:
        import tensorflow_datasets as tfds

        tr, te = tfds.as_numpy(tfds.load("cifar10", split=["train", "test"], batch_size=-1))
        x, y, xt, yt = tr["image"], tr["label"].astype(np.int32), te["image"], te["label"].astype(np.int32)
    else:
        parts = [_read_batch(os.path.join(d, f)) for f in _FILES[:5]]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        xt, yt = _read_batch(os.path.join(d, "test_batch"))
    x, xt = x.astype(np.float32) / 255.0, xt.astype(np.float32) / 255.0
    if cfg.standardize:
        x, xt = standardize(x, xt, axis=(0, 1, 2))
    return Dataset("cifar10", x, y, xt, yt, num_classes=10)
