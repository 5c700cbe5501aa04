"""Modular addition a + b mod p (Power et al., 2022, "Grokking"): every pair (a, b), a fixed random split.

x: [N, 2p] float32, the one-hot codes of a and b side by side (an MLP reads them as they are; its first layer is
then the embedding); y: [N] int32 = (a + b) mod p. ``train_fraction`` of the p² pairs train, the rest test.
"""
from __future__ import annotations

import numpy as np

from jaxlab.config import require
from jaxlab.data.dataset import Dataset, register_dataset

SPLIT_SEED = 0  # the split is part of the dataset, not of a run's seed


def check(d):
    require(d.modulus >= 2, "data.modulus", d.modulus, "must be >= 2")
    require(0 < d.train_fraction < 1, "data.train_fraction", d.train_fraction, "must be in (0, 1)")
    require(1 <= num_train(d) < d.modulus ** 2, "data.train_fraction", d.train_fraction,
            f"leaves no train or no test pair of the {d.modulus ** 2}")


def num_train(d) -> int:
    return int(round(d.train_fraction * d.modulus ** 2))


def pairs(p: int):
    """(a [p²], b [p²], (a + b) mod p [p²]) in a fixed shuffled order."""
    a, b = np.divmod(np.arange(p * p), p)
    order = np.random.default_rng(SPLIT_SEED).permutation(p * p)
    a, b = a[order], b[order]
    return a, b, ((a + b) % p).astype(np.int32)


@register_dataset("modular", train_size=lambda cfg: num_train(cfg), check=check)
def load(cfg) -> Dataset:
    check(cfg)
    p = cfg.modulus
    a, b, y = pairs(p)
    eye = np.eye(p, dtype=np.float32)
    x = np.concatenate([eye[a], eye[b]], axis=1)
    n = num_train(cfg)
    return Dataset("modular", x[:n], y[:n], x[n:], y[n:], num_classes=p, meta={"modulus": p})
