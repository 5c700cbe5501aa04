"""A seconds-long checkpointed run (Adam, minibatch 32, 60 steps, a checkpoint every 10 kept forever) and its
uninterrupted reference, shared by the checkpoint tests."""
import jax
import numpy as np
import pytest


def make_config():
    from jaxlab.schema import base_config

    c = base_config()
    c.data.num_train = 256
    c.data.num_test = 128
    c.model.widths = (32, 32)
    c.optim.name = "adam"
    c.optim.lr = 1e-2
    c.train.steps = 60
    c.train.batch_size = 32
    c.train.log_every = 10
    c.train.progress = False
    c.checkpoint.every = 10
    c.checkpoint.keep_last = 0
    return c


def _assert_same_state(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # bitwise on CPU


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """(workdir, Result) of the uninterrupted checkpointed run; tests must not modify the workdir."""
    from jaxlab.train import run_with_checkpoints
    from jaxlab.io import write_config

    workdir = str(tmp_path_factory.mktemp("reference"))
    config = make_config()
    write_config(workdir, config)
    return workdir, run_with_checkpoints(config, 0, workdir)


@pytest.fixture
def ckpt_config():
    """A factory of fresh copies of the checkpointed run's config."""
    return make_config


@pytest.fixture
def assert_same_state():
    return _assert_same_state
