"""Datasets by name. Each loader registers itself (``@register_dataset``, jaxlab.data.dataset) and returns a
:class:`Dataset` of plain numpy arrays.

    get_dataset(config.data) -> Dataset
"""
from __future__ import annotations

import ml_collections

from jaxlab.config import require
from jaxlab.data import cifar10, mnist1d, modular, mqar, text
from jaxlab.data.batching import sample_batch, steps_per_epoch
from jaxlab.data.dataset import LOADERS, Dataset, register_dataset
from jaxlab.registry import lookup

LOADER_MODULES = (cifar10, mnist1d, modular, mqar, text)  # importing each registers its loader in LOADERS


def default_config() -> ml_collections.ConfigDict:
    """The ``data`` section."""
    return ml_collections.ConfigDict(dict(
        name="mnist1d",        # mnist1d | cifar10 | text | mqar | modular
        num_train=0,           # 0 = all training examples, else the first num_train
        num_test=0,            # 0 = all test examples
        standardize=True,      # per-feature (mnist1d) / per-channel (cifar10) standardisation from train stats
        path="",               # cifar10: directory with the python batches; text: a text file
        seq_len=128,           # text / mqar: tokens per example
        vocab_size=64,         # mqar: vocabulary size
        num_kv_pairs=8,        # mqar: key-value pairs per sequence
        kv_pairs_mix=(),       # mqar: pair counts mixed in equal shares (Zoology); () = num_kv_pairs only
        kv_pool="shared",      # mqar: shared | split (Zoology's keys-low/values-high halves; see data/mqar.py)
        queries="uniform",     # mqar: uniform | zoology (Zoology's power-law query gaps and noise tokens)
        num_examples=4096,     # mqar: training sequences (test set is a quarter of that)
        modulus=97,            # modular: p in a + b mod p (p² pairs)
        train_fraction=0.5,    # modular: share of the p² pairs in the training set
        cache_dir="",          # where generated data is cached ("" = $JAXLAB_CACHE or ~/.cache/jaxlab)
    ))


def train_size(cfg) -> int | None:
    """Training examples ``cfg`` loads (after ``num_train``), or None when only loading can tell."""
    full = lookup(LOADERS, "data.name", cfg.name).train_size
    if full is None:
        return None
    n = full(cfg)
    return min(cfg.num_train, n) if cfg.num_train else n


def get_dataset(cfg) -> Dataset:
    """Load ``cfg.name`` (see LOADERS) and apply the optional train/test subsets."""
    ds = lookup(LOADERS, "data.name", cfg.name).load(cfg)
    return ds.subset(cfg.num_train, cfg.num_test)


def check(config):
    """Raise ConfigError naming the first bad ``data.*`` key."""
    d = config.data
    loader = lookup(LOADERS, "data.name", d.name)
    for key in ("num_train", "num_test"):
        require(d[key] >= 0, f"data.{key}", d[key], "must be >= 0 (0 = all)")
    for key in ("seq_len", "vocab_size", "num_kv_pairs", "num_examples"):
        require(d[key] > 0, f"data.{key}", d[key], "must be > 0")
    if loader.check is not None:  # cifar10's raises a ConfigError with download instructions when absent
        loader.check(d)


__all__ = ["Dataset", "default_config", "check", "get_dataset", "train_size", "sample_batch", "steps_per_epoch",
           "LOADERS", "register_dataset"]
