"""Cache generated datasets as .npz (never pickle: loading a pickle can run code)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

import numpy as np


def cache_dir(override: str = "") -> str:
    return override or os.environ.get("JAXLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jaxlab")


def cached_arrays(name: str, params: dict, build, directory: str = "") -> dict[str, np.ndarray]:
    """Return ``build()``'s dict of arrays, cached at ``<cache>/<name>-<hash(params)>.npz``.

    The file is written to a temporary name and renamed, so a killed process never leaves a truncated cache.
    """
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = cache_dir(directory)
    path = os.path.join(root, f"{name}-{key}.npz")
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError):
            pass  # unreadable cache: rebuild it
    arrays = build()
    try:
        os.makedirs(root, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home is fine: we just regenerate next time
    return arrays
