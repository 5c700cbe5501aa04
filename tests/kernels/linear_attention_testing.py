"""Random problems and error measures shared by the linear-attention tests."""
from __future__ import annotations

import numpy as np


def rel_err(x, ref) -> float:
    """max |x - ref| / max |ref|; fails on any non-finite value in x (so NaN never passes)."""
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    assert x.shape == ref.shape, (x.shape, ref.shape)
    assert np.all(np.isfinite(x)), "non-finite values in the result"
    assert np.all(np.isfinite(ref)), "non-finite values in the reference"
    return float(np.max(np.abs(x - ref)) / max(np.max(np.abs(ref)), 1e-30))


def problem(seed, B, T, H, Dk, Dv, *, decay=None, positive=False, state=False, normalize=False):
    """float64 numpy inputs. decay: None | 'fixed' ([H]) | 'gate' ([B, T, H]); positive: feature-mapped q, k;
    state: an initial state ([B, H, Dk, Dv + normalize], its key-sum column positive)."""
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((B, T, H, Dk)), rng.standard_normal((B, T, H, Dk))
    v = rng.standard_normal((B, T, H, Dv))
    if positive:  # elu(x) + 1, as a positive feature map would give
        q, k = (np.where(x > 0, x + 1, np.exp(x)) for x in (q, k))
    g = None
    if decay == "fixed":
        g = np.log(1 - 2.0 ** (-1 - np.arange(H)))                     # RetNet-like, strong to mild
    elif decay == "gate":
        g = np.log(1 / (1 + np.exp(-rng.standard_normal((B, T, H)) - 2)))  # log sigmoid, mostly near 0
    s0 = None
    if state:
        s0 = rng.standard_normal((B, H, Dk, Dv + int(normalize)))
        if normalize:
            s0[..., -1] = np.abs(s0[..., -1]) * T

    return dict(q=q, k=k, v=v, log_decay=g, initial_state=s0)
