"""Schedule refinement from a previous run's gradient norms (Defazio, Cutkosky, Mehta & Mishchenko, 2023,
"Optimal linear decay learning rate schedules and further refinements", Algorithm 1).

Given per-step gradient norms ``g_1..g_N`` of a first run, smoothed by a median filter,

    w_t = ‖g_t‖⁻²,     η_t ∝ w_t · Σ_{p>t} w_p,     normalised so that max_t η_t = 1.

With constant gradient norms this is the linear decay ``(N − t)/N`` (up to the last step); where gradient norms
fall the schedule rises (an automatic warmup) and where they grow late in training it decays earlier. The
multiplier is used by the ``refined`` schedule (schedules.py), which reads the norms from
``optim.schedule.refine_path``: a ``.npy`` / ``.txt`` array, or a single run's ``metrics.jsonl`` (its logged
``grad_norm`` values, linearly interpolated to every step).
"""
from __future__ import annotations

import functools
import json
import os

import numpy as np
from scipy.ndimage import median_filter


def refine(grad_norms, width: float = 0.1) -> np.ndarray:
    """grad_norms: [N] positive -> multiplier η: [N], max 1, η[N−1] = 0 (float64 numpy).

    width: median-filter window as a fraction of N (at least one step); the filter pads by repeating the ends.
    """
    g = np.asarray(grad_norms, np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"refine: need a 1-D sequence of at least 2 gradient norms, got shape {g.shape}")
    if not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError("refine: gradient norms must be finite and > 0 (was the recorded run diverging?)")
    size = max(1, int(round(width * g.size)))
    smooth = median_filter(g, size=size, mode="nearest")
    w = smooth ** -2.0
    tail = np.cumsum(w[::-1])[::-1] - w          # Σ_{p>t} w_p
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
def _cached(path: str, mtime: float, width: float) -> np.ndarray:
    del mtime  # part of the cache key: a rewritten file is read again
    return refine(load_grad_norms(path), width).astype(np.float32)


def refined_multiplier_values(path: str, width: float) -> np.ndarray:
    """The refined multiplier for the norms recorded at ``path`` (cached per file version and width)."""
    return _cached(path, os.path.getmtime(path), float(width))
