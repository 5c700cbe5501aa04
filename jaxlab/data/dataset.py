"""The container every loader returns, and the registry of loaders.

    @register_dataset("mnist1d", train_size=lambda cfg: 4000)
    def load(cfg) -> Dataset: ...      # cfg: the ``data`` config section
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import numpy as np

from jaxlab.config import ConfigError
from jaxlab.registry import registrar


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Plain arrays, on host.

    classification: x_*: [N, ...features] float32, y_*: [N] int32 class ids.
    lm:             x_*: [N, T] int32 tokens,      y_*: [N, T] int32 next tokens (-1 = ignored position).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int          # classes, or vocabulary size for language modelling
    task: str = "classification"  # classification | lm
    meta: dict = dataclasses.field(default_factory=dict)

    def subset(self, num_train: int = 0, num_test: int = 0) -> "Dataset":
        """The first ``num_train`` / ``num_test`` examples (0 = all). Loaders shuffle once, so this is a random subset."""
        for key, n, arr in (("num_train", num_train, self.x_train), ("num_test", num_test, self.x_test)):
            if n > len(arr):
                raise ConfigError(f"config.data.{key}={n}: the {self.name} dataset has only {len(arr)} examples")
        xtr, ytr = (self.x_train[:num_train], self.y_train[:num_train]) if num_train else (self.x_train, self.y_train)
        xte, yte = (self.x_test[:num_test], self.y_test[:num_test]) if num_test else (self.x_test, self.y_test)
        return dataclasses.replace(self, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def standardize(x_train: np.ndarray, x_test: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray]:
    """Zero mean, unit variance with statistics of the training set only (no test leakage)."""
    mean = x_train.mean(axis=axis, keepdims=True)
    std = x_train.std(axis=axis, keepdims=True) + 1e-8
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


class Loader(NamedTuple):
    """A registered dataset: its loader and what is known of it before loading."""
    load: Callable[..., "Dataset"]                 # data section -> Dataset (before the num_train/num_test subset)
    train_size: Callable[..., int] | None = None   # data section -> training examples, when known without loading
    check: Callable[..., None] | None = None       # data section -> None; ConfigError naming the bad data.* key


LOADERS: dict[str, Loader] = {}
register_dataset = registrar(LOADERS, Loader)
