"""Schedule refinement from a previous run's gradient norms (Defazio, Cutkosky, Mehta & Mishchenko, 2023,
"When, Why and How Much? Adaptive Learning Rate Scheduling by Refinement" / "Optimal linear decay learning rate
schedules and further refinements", arXiv:2310.07831, Algorithm 1; reference code facebookresearch/adaptive_scheduling,
``find_closed_form_schedule`` and its README's median filter).

Given per-step gradient norms ``g_0..g_{N−1}`` of a first run, smoothed by the reference median filter,

    w_t = ĝ_t⁻²  (norm="l2": SGD)     or     w_t = ĝ_t⁻¹  (norm="l1": Adam, with ĝ the ℓ1 norms),
    η_t ∝ w_t · Σ_{s>t} w_s,     normalised so that max_t η_t = 1  (η_{N−1} = 0).

The median filter (reference): odd window ``k = 2·⌊⌊width·N⌋/2⌋ + 1``, the sequence padded at its *end* by
2k reflected values (numpy "reflect"), ``scipy.ndimage.median_filter(size=k, mode="nearest")``, padding removed.

The refined η *replaces* the warmup + decay shape: with constant norms it is the linear decay (N−1−t)/(N−1);
where norms fall early it rises from near 0 (the paper's automatic warmup), and where they grow late it decays
earlier. The ``refined`` schedule (schedules.py) reads the norms from ``optim.schedule.refine_path``: a ``.npy`` /
``.txt`` array, or a single run's ``metrics.jsonl`` (its logged ``grad_norm`` values, linearly interpolated to
every step; those are ℓ2 norms, so "l1" needs an array file).
"""
from __future__ import annotations

import functools
import json
import os

import numpy as np

REFINE_NORMS = {"l2": 2.0, "l1": 1.0}   # name -> power p of w_t = ĝ_t^(−p)


def smooth_norms(g: np.ndarray, width: float) -> np.ndarray:
    """The reference median filter of g [N] with window 2·⌊⌊width·N⌋/2⌋ + 1: [N]."""
    k = 2 * (int(width * g.size) // 2) + 1
    pad = 2 * k
    from scipy.ndimage import median_filter  # here: scipy.ndimage costs every CLI start ~0.3 s

    return median_filter(np.pad(g, (0, pad), mode="reflect"), size=k, mode="nearest")[:-pad]


def refine(grad_norms, width: float = 0.1, norm: str = "l2") -> np.ndarray:
    """grad_norms: [N] positive -> multiplier η: [N], max 1, η[N−1] = 0 (float64 numpy).

    width: median-filter window as a fraction of N (odd, at least one step). norm: "l2" | "l1" (see above).
    """
    if norm not in REFINE_NORMS:
        raise ValueError(f"refine: norm={norm!r} must be one of {sorted(REFINE_NORMS)}")
    g = np.asarray(grad_norms, np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"refine: need a 1-D sequence of at least 2 gradient norms, got shape {g.shape}")
    if not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError("refine: gradient norms must be finite and > 0 (was the recorded run diverging?)")
    w = smooth_norms(g, width) ** -REFINE_NORMS[norm]
    tail = np.cumsum(w[::-1])[::-1] - w          # Σ_{s>t} w_s
    eta = w * tail
    return eta / eta.max()


def load_grad_norms(path: str) -> np.ndarray:
    """Per-step gradient norms [N] from ``.npy``, ``.txt`` (one number per line) or a single run's metrics.jsonl."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no gradient-norm file at {path!r}")
    if path.endswith(".npy"):
        return np.asarray(np.load(path), np.float64).reshape(-1)
    if path.endswith(".jsonl"):
        return _from_records(path)
    return np.loadtxt(path, dtype=np.float64).reshape(-1)


def _from_records(path: str) -> np.ndarray:
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    runs = {json.dumps(r.get("run"), sort_keys=True) for r in records if "grad_norm" in r}
    if len(runs) > 1:
        raise ValueError(f"{path} holds {len(runs)} runs; save the one to refine from as a .npy of grad norms")
    # A record at step s carries the gradient norm of step s − 1 (the last step of the chunk it closes).
    pts = sorted((r["step"] - 1, float(r["grad_norm"])) for r in records
                 if isinstance(r.get("grad_norm"), (int, float)))
    if len(pts) < 2:
        raise ValueError(f"{path}: fewer than 2 records with a grad_norm")
    steps, norms = np.array(pts).T
    return np.interp(np.arange(int(steps[-1]) + 1), steps, norms)


@functools.lru_cache(maxsize=16)
def _cached(path: str, mtime: float, width: float, norm: str) -> np.ndarray:
    del mtime  # part of the cache key: a rewritten file is read again
    return refine(load_grad_norms(path), width, norm).astype(np.float32)


def refined_multiplier_values(path: str, width: float, norm: str = "l2") -> np.ndarray:
    """The refined multiplier for the norms recorded at ``path`` (cached per file version, width and norm)."""
    return _cached(path, os.path.getmtime(path), float(width), str(norm))
