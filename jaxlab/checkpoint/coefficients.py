"""Merge coefficients: how much of each checkpoint goes into an average of a window of W checkpoints.

Every scheme returns ``c`` of shape [W], ordered oldest -> newest, non-negative and summing to 1:

  - ``uniform``: the mean of the last W checkpoints, ``c_j = 1/W``.
  - ``ema``: an exponential moving average started at the oldest checkpoint of the window,
    ``e_0 = θ_0, e_j = d·e_{j-1} + (1−d)·θ_j`` -> ``c_0 = d^{W−1}, c_j = (1−d)·d^{W−1−j}``.
  - WSM decay emulation (Tian et al., 2025, "WSM: Decay-Free Learning Rate Schedule via Checkpoint Merging",
    arXiv:2507.17634): merging θ_n..θ_{n+k} (k = W − 1 intervals, θ_{n+j} = θ_n − Σ_{i≤j} η g_{n+i−1} at a
    constant lr) as ``Σ_j c_j θ_{n+j} = θ_n − Σ_i w_i η g_{n+i−1}`` applies the gradient of interval i with the
    cumulative weight ``w_i = Σ_{j≥i} c_j``: a decay schedule. For a decay shape f (1 at 0, decreasing) the
    paper's ``w_i = f(i/(k+1))``, i = 1..k, gives ``c_0 = 1 − w_1, c_j = w_j − w_{j+1}, c_k = w_k``.
    Shapes: ``linear`` 1 − x, ``cosine`` (1 + cos πx)/2, ``one_minus_sqrt`` 1 − √x, and ``inverse_sqrt``
    (r(x) − r(1))/(1 − r(1)) with r(x) = 1/√(1 + 15x): the inverse-sqrt profile (falling to 1/4 of its start over
    the window) shifted and rescaled to end at 0 like every other shape, so all shapes share f(0) = 1, f(1) = 0
    and differ only in how the decay is distributed (the paper gives no fixed form).

Coefficients are float64 numpy (they are a handful of numbers computed once); the merge casts to float32.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# Decay shapes f: [0, 1] -> [0, 1], f(0) = 1, f(1) = 0, non-increasing.
WSM_SHAPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: 1.0 - x,
    "cosine": lambda x: 0.5 * (1.0 + np.cos(np.pi * x)),
    "one_minus_sqrt": lambda x: 1.0 - np.sqrt(x),
    "inverse_sqrt": lambda x: (1.0 / np.sqrt(1.0 + 15.0 * x) - 0.25) / 0.75,   # r(1) = 1/√16 = 1/4
}


def uniform(window: int, **_) -> np.ndarray:
    return np.full(window, 1.0 / window)


def ema(window: int, decay: float = 0.9, **_) -> np.ndarray:
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema decay={decay!r}: must be in [0, 1)")
    j = np.arange(window)
    c = (1.0 - decay) * decay ** (window - 1 - j)
    c[0] = decay ** (window - 1)
    return c


def wsm_weights(shape: str, k: int) -> np.ndarray:
    """Cumulative gradient weights w_i = f(i/(k+1)), i = 1..k: [k]."""
    return WSM_SHAPES[shape](np.arange(1, k + 1) / (k + 1.0))


def wsm(window: int, shape: str = "linear", **_) -> np.ndarray:
    """c_0 = 1 − w_1, c_j = w_j − w_{j+1}, c_k = w_k over W = k + 1 checkpoints: [W]."""
    w = wsm_weights(shape, window - 1)
    padded = np.concatenate([[1.0], w, [0.0]])      # w_0 = 1 and w_{k+1} = 0 make every c_j a difference
    return padded[:-1] - padded[1:]


def _wsm_scheme(shape: str):
    return lambda window, **kw: wsm(window, shape)


SCHEMES: dict[str, Callable[..., np.ndarray]] = {"uniform": uniform, "ema": ema,
                                                 **{s: _wsm_scheme(s) for s in WSM_SHAPES}}


def coefficients(scheme: str, window: int, **kwargs) -> np.ndarray:
    """The coefficients of ``scheme`` over ``window`` checkpoints (oldest first): float64 [window]."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r}: unknown; choose from {sorted(SCHEMES)}")
    if int(window) != window or window < 1:
        raise ValueError(f"window={window!r}: must be a positive integer")
    return SCHEMES[scheme](int(window), **kwargs)


def implied_gradient_weights(c: np.ndarray) -> np.ndarray:
    """w_i = Σ_{j≥i} c_j, i = 1..k: the lr multiplier each interval's gradient gets in the merge (for plots)."""
    return np.cumsum(np.asarray(c)[::-1])[::-1][1:]
