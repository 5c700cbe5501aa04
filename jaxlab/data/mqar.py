"""Synthetic multi-query associative recall (MQAR; Arora et al., "Zoology", 2023).

Each sequence starts with ``num_kv_pairs`` key-value pairs, ``k1 v1 k2 v2 ...``; later every key is queried
once, at a random position, and the model must emit its value at that position. Keys are drawn from the lower
half of the vocabulary, values from the upper half; token 0 is filler.

x: [N, T] int32, y: [N, T] int32 with the value at query positions and -1 (ignored) elsewhere.
"""
from __future__ import annotations

import numpy as np

from jaxlab.data.dataset import Dataset
from jaxlab.config import require


def check(d):
    require(d.vocab_size >= 2 * d.num_kv_pairs + 2, "data.vocab_size", d.vocab_size,
            f"must be >= 2*num_kv_pairs+2 = {2 * d.num_kv_pairs + 2} so keys and values are distinct")
    require(d.seq_len >= 3 * d.num_kv_pairs, "data.seq_len", d.seq_len,
            f"must be >= 3*num_kv_pairs = {3 * d.num_kv_pairs} (pairs, then one query per key)")


def generate(rng: np.random.Generator, n: int, seq_len: int, vocab_size: int, num_kv: int):
    half = vocab_size // 2
    keys = np.stack([rng.choice(np.arange(1, half), num_kv, replace=False) for _ in range(n)])
    values = rng.integers(half, vocab_size, size=(n, num_kv))
    x = np.zeros((n, seq_len), np.int32)
    y = np.full((n, seq_len), -1, np.int32)
    x[:, 0: 2 * num_kv: 2] = keys
    x[:, 1: 2 * num_kv: 2] = values
    rows = np.arange(n)[:, None]
    # Query slots: distinct random positions after the context, one per key, in a random order.
    slots = np.sort(np.argsort(rng.random((n, seq_len - 2 * num_kv)), axis=1)[:, :num_kv], axis=1) + 2 * num_kv
    order = np.argsort(rng.random((n, num_kv)), axis=1)
    x[rows, slots] = keys[rows, order]
    y[rows, slots] = values[rows, order]
    return x, y


def load(cfg) -> Dataset:
    check(cfg)
    args = (cfg.seq_len, cfg.vocab_size, cfg.num_kv_pairs)
    x, y = generate(np.random.default_rng(0), cfg.num_examples, *args)
    xt, yt = generate(np.random.default_rng(1), max(1, cfg.num_examples // 4), *args)
    return Dataset("mqar", x, y, xt, yt, num_classes=cfg.vocab_size, task="lm",
                   meta={"num_kv_pairs": cfg.num_kv_pairs})
