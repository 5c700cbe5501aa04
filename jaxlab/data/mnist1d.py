"""MNIST-1D (Greydanus & Kobak), generated locally by the ``mnist1d`` package: no download.

x: [N, 40] float32, y: [N] int32 in 0..9. The default generator settings give 4,000 train / 1,000 test.
"""
from __future__ import annotations

import numpy as np

from jaxlab.data.cache import cached_arrays
from jaxlab.data.dataset import Dataset, register_dataset, standardize

NUM_SAMPLES = 5000  # the package's default: 4000 train + 1000 test
NUM_TRAIN = 4000
GENERATOR_SEED = 42  # the package's default seed, so our data is the published MNIST-1D


def _generate() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = NUM_SAMPLES, GENERATOR_SEED
    state = np.random.get_state()  # mnist1d seeds the global numpy RNG; don't leak that to the caller
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int32),
            "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int32)}


@register_dataset("mnist1d", train_size=lambda cfg: NUM_TRAIN)
def load(cfg) -> Dataset:
    d = cached_arrays("mnist1d", {"n": NUM_SAMPLES, "seed": GENERATOR_SEED, "v": 1}, _generate, cfg.cache_dir)
    x, xt = d["x"], d["x_test"]
    if cfg.standardize:
        x, xt = standardize(x, xt, axis=0)
    return Dataset("mnist1d", x, d["y"], xt, d["y_test"], num_classes=10)
