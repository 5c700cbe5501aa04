"""Datasets by name. Each loader returns a :class:`Dataset` of plain numpy arrays.

    get_dataset(config.data) -> Dataset
"""
from __future__ import annotations

from jaxlab.config import register_check, require, require_choice
from jaxlab.data.batching import sample_batch, steps_per_epoch
from jaxlab.data.dataset import Dataset
from jaxlab.data import cifar10, mnist1d, mqar, text

LOADERS = {
    "mnist1d": mnist1d.load,
    "cifar10": cifar10.load,
    "text": text.load,
    "mqar": mqar.load,
}


def get_dataset(cfg) -> Dataset:
    """Load ``cfg.name`` (see LOADERS) and apply the optional train/test subsets."""
    require_choice("data.name", cfg.name, LOADERS)
    ds = LOADERS[cfg.name](cfg)
    return ds.subset(cfg.num_train, cfg.num_test)


@register_check("data")
def check_data(config):
    d = config.data
    require_choice("data.name", d.name, LOADERS)
    for key in ("num_train", "num_test"):
        require(d[key] >= 0, f"data.{key}", d[key], "must be >= 0 (0 = all)")
    for key in ("seq_len", "vocab_size", "num_kv_pairs", "num_examples"):
        require(d[key] > 0, f"data.{key}", d[key], "must be > 0")
    if d.name == "text":
        text.check_path(d.path)
    if d.name == "mqar":
        mqar.check(d)
    if d.name == "cifar10":
        cifar10.find(d.path)  # raises a ConfigError with download instructions when absent


__all__ = ["Dataset", "get_dataset", "sample_batch", "steps_per_epoch", "LOADERS"]
