"""Scoring parameters restored from checkpoints (a merge) on their run's data: train/test loss and accuracy.

    ev = Evaluator(config)                  # the run's config (ConfigDict, or the dict read from its config.json)
    ev(params) -> {"train_loss": x, "test_loss": x, ...}
    ev(stacked_params, stacked=True) -> {"train_loss": [x per run], ...}

The dataset and the two compiled functions live as long as the Evaluator: build one per run directory and
drop it when done. The train metrics are over the same examples the run evaluated (``train.eval_examples``),
so they compare with its records.
"""
from __future__ import annotations

import jax
import ml_collections

from jaxlab import data as data_lib
from jaxlab.config import flatten
from jaxlab.schema import base_config
from jaxlab.train import make_train, to_python


def as_config(config) -> ml_collections.ConfigDict:
    """A ConfigDict from a config or from the dict its config.json holds (sections unknown to jaxlab are kept)."""
    if isinstance(config, ml_collections.ConfigDict):
        return config
    c = base_config()
    known = {k: tuple(v) if isinstance(v, list) else v for k, v in flatten(config).items()}
    with c.unlocked():
        for section in set(config) - set(c):
            c[section] = ml_collections.ConfigDict(config[section])  # an experiment's own section (e.g. wsm)
    c.update_from_flattened_dict({k: v for k, v in known.items() if k.split(".")[0] in c})
    return c


class Evaluator:
    """The run's data and its metrics function, compiled once for single and for stacked parameters."""

    def __init__(self, config):
        config = as_config(config)
        dataset = data_lib.get_dataset(config.data)
        trainer = make_train(config, dataset)
        data = trainer.device_data(dataset)

        def metrics(params):
            out = {}
            out["train_loss"], out["train_accuracy"] = trainer.evaluate(params, data["x_eval"], data["y_eval"])
            out["test_loss"], out["test_accuracy"] = trainer.evaluate(params, data["x_test"], data["y_test"])
            return out

        self._single, self._stacked = jax.jit(metrics), jax.jit(jax.vmap(metrics))

    def __call__(self, params, stacked: bool = False) -> dict:
        """Loss and accuracy of ``params`` (stacked: a leading run axis, one value per run)."""
        return to_python((self._stacked if stacked else self._single)(params))
