import jax
import numpy as np

from jaxlab.models import model_config
from jaxlab.train import run


def _leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state.params)]


def test_run_is_deterministic_and_seed_dependent(tiny_config):
    a, b = run(tiny_config, 0), run(tiny_config, 0)
    for x, y in zip(_leaves(a.state), _leaves(b.state)):
        np.testing.assert_array_equal(x, y)  # bitwise on CPU
    c = run(tiny_config, 1)
    assert any(not np.array_equal(x, y) for x, y in zip(_leaves(a.state), _leaves(c.state)))
    assert a.records == b.records


def test_full_batch_loss_decreases_and_records_are_complete(tiny_config):
    res = run(tiny_config, 0)
    steps = [r["step"] for r in res.records]
    assert steps == [0, 10, 20, 30, 40]
    losses = [r["train_loss"] for r in res.records]
    assert losses[-1] < 0.7 * losses[0]
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "param_norm", "grad_norm"):
        assert key in res.records[-1], key
    assert res.summary["steps"] == 40 and not res.summary["diverged"]


def test_minibatch_training_cross_entropy(tiny_config):
    tiny_config.train.batch_size = 32
    tiny_config.loss.name = "cross_entropy"
    tiny_config.optim.lr = 0.1
    tiny_config.train.steps = 60
    res = run(tiny_config, 0)
    assert res.records[-1]["train_loss"] < res.records[0]["train_loss"]


def test_divergent_run_is_frozen_and_flagged(tiny_config):
    tiny_config.optim.lr = 50.0
    res = run(tiny_config, 0)
    assert res.summary["diverged"] and 0 <= res.summary["diverged_step"] < 40
    assert res.records[-1]["diverged"]
    assert all(np.isfinite(x).all() for x in _leaves(res.state))  # frozen before the non-finite update


def test_transformer_lm_on_mqar_learns(tiny_config):
    c = tiny_config
    c.data.name, c.data.seq_len, c.data.vocab_size, c.data.num_kv_pairs, c.data.num_examples = "mqar", 24, 32, 4, 512
    c.data.num_train = c.data.num_test = 0
    c.model = model_config("transformer", d_model=32, num_heads=2, num_layers=2, activation="gelu")
    c.loss.name = "cross_entropy"
    c.optim.name, c.optim.lr = "adam", 3e-3
    c.train.batch_size, c.train.steps = 64, 100
    res = run(c, 0)
    assert res.records[-1]["train_loss"] < 0.8 * res.records[0]["train_loss"]
