"""Synthetic multi-query associative recall (MQAR; Arora et al., "Zoology", 2023).

Each sequence starts with ``num_kv_pairs`` key-value pairs, ``k1 v1 k2 v2 ...``; later every key is queried
once and the model must emit its value at the query position. Keys are distinct within a sequence, and so are
values (as in Zoology). Token 0 is filler.

Key/value pool (``data.kv_pool``):
  - "shared" (default): a sequence's 2K keys and values are distinct tokens drawn from 1..V-1 (the first K are
    keys), so a token's id does not say whether it is a key or a value, and no token is both in one sequence
    (a key that is also a value of the context would be followed by two different tokens there, an ambiguity
    that capped softmax at ≈ 1 - K/(2(V-1)) recall, docs/lm.md).
  - "split" (Zoology's generator): keys from 1..V/2-1, values from V/2..V-1. At a small vocabulary this opens a
    shortcut: the model recognises "a value" by its id and guesses among the context's values ("bag of values",
    recall 1/K, see :func:`bag_of_values`), a local optimum that a 32-token LM trained on a CPU budget does
    not leave (docs/lm.md). Zoology's 8,192-token vocabulary hides it.

Query placement (``data.queries``):
  - "uniform": one query per key at distinct positions drawn uniformly after the context, in random order;
    other positions are filler 0.
  - "zoology": Zoology's ``multiquery_ar``: query i at 2K + 2·g_i, gaps g_i distinct, drawn with probability
    ∝ g^(a-1) (a = 0.01: queries near the context are likelier); every other non-context position holds a
    random token of the whole vocabulary (noise, unlabelled). Needs seq_len >= 4K.

Pair counts (``data.kv_pairs_mix``): () gives every sequence ``num_kv_pairs`` pairs; a tuple of counts gives a
mixture, equal shares of each count shuffled together, in the training and the test set alike (Zoology trains
one model on several pair counts and evaluates each; see :func:`pair_counts`).

x: [N, T] int32, y: [N, T] int32 with the value at query positions and -1 (ignored) elsewhere.
"""
from __future__ import annotations

import math

import numpy as np

from jaxlab.config import require, require_choice
from jaxlab.data.dataset import Dataset, register_dataset

POOLS = ("shared", "split")
QUERIES = ("uniform", "zoology")
POWER_A = 0.01  # Zoology's power_a for the query gaps


def pair_counts(d) -> tuple[int, ...]:
    """The pair counts of the data section d: data.kv_pairs_mix, or (data.num_kv_pairs,) when that is empty."""
    return tuple(int(k) for k in d.kv_pairs_mix) or (int(d.num_kv_pairs),)


def check(d):
    require_choice("data.kv_pool", d.kv_pool, POOLS)
    require_choice("data.queries", d.queries, QUERIES)
    key = "data.kv_pairs_mix" if d.kv_pairs_mix else "data.num_kv_pairs"
    counts = pair_counts(d)
    require(min(counts) >= 1 and len(set(counts)) == len(counts), key, d[key.split(".")[1]],
            "must be >= 1 (each count once)")
    most = max(counts)
    need = 2 * most + 1 if d.kv_pool == "shared" else 2 * most + 2
    require(d.vocab_size >= need, "data.vocab_size", d.vocab_size,
            f"must be >= {need} for {most} keys and values, all distinct, from the "
            f"{d.kv_pool} pool (token 0 is filler)")
    factor = 4 if d.queries == "zoology" else 3
    require(d.seq_len >= factor * most, "data.seq_len", d.seq_len,
            f"must be >= {factor}*{most} = {factor * most} for {most} pairs and data.queries={d.queries!r}")


def _pools(vocab_size: int, pool: str):
    if pool == "shared":
        return np.arange(1, vocab_size), np.arange(1, vocab_size)
    half = vocab_size // 2
    return np.arange(1, half), np.arange(half, vocab_size)


def _distinct(rng, pool: np.ndarray, n: int, k: int) -> np.ndarray:
    """[n, k] rows of k distinct draws from pool (argsort of uniforms = a random permutation per row)."""
    return pool[np.argsort(rng.random((n, len(pool))), axis=1)[:, :k]]


def generate(rng: np.random.Generator, n: int, seq_len: int, vocab_size: int, num_kv: int,
             pool: str = "shared", queries: str = "uniform"):
    """n sequences -> (x, y), both [n, seq_len] int32 (see the module docstring for pool and queries)."""
    key_pool, value_pool = _pools(vocab_size, pool)
    if pool == "shared":
        tokens = _distinct(rng, key_pool, n, 2 * num_kv)
        keys, values = tokens[:, :num_kv], tokens[:, num_kv:]
    else:
        keys, values = _distinct(rng, key_pool, n, num_kv), _distinct(rng, value_pool, n, num_kv)
    x = np.zeros((n, seq_len), np.int32)
    y = np.full((n, seq_len), -1, np.int32)
    x[:, 0: 2 * num_kv: 2] = keys
    x[:, 1: 2 * num_kv: 2] = values
    rows = np.arange(n)[:, None]
    if queries == "uniform":
        # distinct random positions after the context, one per key, keys in a random order
        slots = np.sort(np.argsort(rng.random((n, seq_len - 2 * num_kv)), axis=1)[:, :num_kv], axis=1) + 2 * num_kv
        order = np.argsort(rng.random((n, num_kv)), axis=1)
    else:
        space = (seq_len - 2 * num_kv) // 2
        p = POWER_A * np.arange(1, space + 1, dtype=np.float64) ** (POWER_A - 1)
        # distinct gaps with probabilities p (numpy's choice without replacement, as Zoology, one row at a time)
        gaps = np.stack([rng.choice(space, num_kv, replace=False, p=p / p.sum()) for _ in range(n)])
        slots, order = 2 * num_kv + 2 * gaps, np.broadcast_to(np.arange(num_kv), (n, num_kv))
        x[:, 2 * num_kv:] = rng.integers(0, vocab_size, size=(n, seq_len - 2 * num_kv))
    x[rows, slots] = keys[rows, order]
    y[rows, slots] = values[rows, order]
    return x, y


def bag_of_values(x: np.ndarray, y: np.ndarray, num_kv: int, vocab_size: int, pool: str) -> dict:
    """The "bag of values" guess, measured on (x, y): at each query, a uniform guess among the distinct
    context tokens (first 2K) that the pool allows as values, i.e. what is learnable from token ids alone.

    Returns {"recall": expected accuracy, "loss": cross-entropy in nats of the uniform guess} over the queries.
    With "split" the candidates are exactly the K values (recall 1/K, loss log K); with "shared" they are all
    2K keys and values of the context.
    """
    _, value_pool = _pools(vocab_size, pool)
    allowed = np.zeros(vocab_size, bool)
    allowed[value_pool] = True
    ctx = x[:, : 2 * num_kv]
    recall, loss = [], []
    for row_ctx, row_y in zip(ctx, y):
        cand = {int(t) for t in row_ctx if allowed[t]}
        for label in row_y[row_y >= 0]:
            hit = int(label) in cand
            recall.append(hit / len(cand))
            loss.append(math.log(len(cand)) if hit else math.inf)
    return {"recall": float(np.mean(recall)), "loss": float(np.mean(loss))}


def bag_of_values_closed_form(num_kv: int, pool: str) -> dict:
    """Closed form of :func:`bag_of_values`: a uniform guess among the K values (split: recall 1/K, loss log K)
    or among the 2K distinct context tokens (shared: recall 1/(2K), loss log 2K)."""
    candidates = num_kv if pool == "split" else 2 * num_kv
    return {"recall": 1.0 / candidates, "loss": math.log(candidates)}


def mixture(rng: np.random.Generator, n: int, seq_len: int, vocab_size: int, counts: tuple[int, ...],
            pool: str = "shared", queries: str = "uniform"):
    """n sequences, equal shares (the first n mod len(counts) counts one more) of each pair count in counts,
    shuffled -> (x, y), both [n, seq_len] int32. One count: exactly :func:`generate`."""
    if len(counts) == 1:
        return generate(rng, n, seq_len, vocab_size, counts[0], pool, queries)
    shares = [n // len(counts) + (i < n % len(counts)) for i in range(len(counts))]
    parts = [generate(rng, m, seq_len, vocab_size, k, pool, queries) for k, m in zip(counts, shares)]
    order = rng.permutation(n)
    return tuple(np.concatenate(a)[order] for a in zip(*parts))


@register_dataset("mqar", train_size=lambda cfg: cfg.num_examples, check=check)
def load(cfg) -> Dataset:
    check(cfg)
    counts = pair_counts(cfg)
    args = (cfg.seq_len, cfg.vocab_size, counts, cfg.kv_pool, cfg.queries)
    x, y = mixture(np.random.default_rng(0), cfg.num_examples, *args)
    xt, yt = mixture(np.random.default_rng(1), max(1, cfg.num_examples // 4), *args)
    return Dataset("mqar", x, y, xt, yt, num_classes=cfg.vocab_size, task="lm",
                   meta={"num_kv_pairs": counts if len(counts) > 1 else counts[0], "kv_pool": cfg.kv_pool,
                         "queries": cfg.queries})
