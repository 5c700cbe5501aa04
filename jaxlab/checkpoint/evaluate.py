"""Evaluating restored parameters (a merge) on the run's data: train/test loss and accuracy.

    evaluate_params(config, params, stacked=False) -> {"train_loss": x, "test_loss": x, ...}
    evaluate_params(config, stacked_params, stacked=True) -> {"train_loss": [x per run], ...}

``config`` is the run's config (a ConfigDict, or the dict read back from its config.json). The train metrics
are over the same examples the run evaluated (``train.eval_examples``), so they compare with its records.
"""
from __future__ import annotations

import functools
import json

import jax
import ml_collections

from jaxlab import data as data_lib
from jaxlab.config import flatten


def as_config(config):
    if isinstance(config, ml_collections.ConfigDict):
        return config
    from jaxlab.config import base_config

    c = base_config()
    c.update_from_flattened_dict({k: tuple(v) if isinstance(v, list) else v for k, v in flatten(config).items()})
    return c


@functools.lru_cache(maxsize=4)
def _trainer_and_data(config_json: str):
    from jaxlab.train import make_train

    config = as_config(json.loads(config_json))
    dataset = data_lib.get_dataset(config.data)
    trainer = make_train(config, dataset)
    data = trainer.device_data(dataset)

    def metrics(params):
        out = {}
        out["train_loss"], out["train_accuracy"] = trainer.evaluate(params, data["x_eval"], data["y_eval"])
        out["test_loss"], out["test_accuracy"] = trainer.evaluate(params, data["x_test"], data["y_test"])
        return out

    return jax.jit(metrics), jax.jit(jax.vmap(metrics))


def evaluate_params(config, params, stacked: bool = False) -> dict:
    """Loss and accuracy of ``params`` (stacked: a leading run axis, one value per run)."""
    from jaxlab.train import to_python

    config = as_config(config)
    single, batched = _trainer_and_data(config.to_json())
    return to_python((batched if stacked else single)(params))
