"""Curvature tracking under the sweep's vmap: each run's sharpness is that of its own parameters.

The tracker here is a self-contained power iteration on Hessian-vector products (forward-over-reverse, as
curvature trackers compute them), installed as ``jaxlab.curvature.tracker`` for the test: what is checked is
that the sweep's batching (vmap over runs, sharding) keeps per-run quantities per run. (HVPs through the
CNN's vmapped im2col form against its XLA form: tests/sweep/test_cnn_vmap.py.)
"""
import importlib.util
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import data as data_lib
from jaxlab.sweep import sweep
from jaxlab.train import make_train

from sweep_testing import sweep_config

ITERS = 30


def make_tracker(config, loss_fn):
    def measure(params, opt_state, lr, batch):
        f = lambda p: loss_fn(p, batch)  # noqa: E731
        hvp = lambda v: jax.jvp(jax.grad(f), (params,), (v,))[1]  # noqa: E731
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.PRNGKey(0), len(leaves))
        v = jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])

        def body(_, v):
            hv = hvp(v)
            return jax.tree.map(lambda x: x / optax_norm(hv), hv)

        v = jax.lax.fori_loop(0, ITERS, body, jax.tree.map(lambda x: x / optax_norm(v), v))
        return {"sharpness": sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(hvp(v))))}

    return measure


def optax_norm(tree):
    return jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(tree)))


def test_sharpness_per_run_under_vmap(monkeypatch):
    module = types.ModuleType("jaxlab.curvature.tracker")
    module.make_tracker = make_tracker
    if importlib.util.find_spec("jaxlab.curvature") is None:
        monkeypatch.setitem(sys.modules, "jaxlab.curvature", types.ModuleType("jaxlab.curvature"))
    monkeypatch.setitem(sys.modules, "jaxlab.curvature.tracker", module)

    config = sweep_config()
    config.curvature.every = 10
    config.train.batch_size = 0
    res = sweep(config, seeds=2, axes={"optim.lr": [0.05, 0.2]}, log=None)
    ds = data_lib.get_dataset(config.data)
    trainer = make_train(config, ds)  # the one-run trainer
    data = trainer.device_data(ds)
    tracker = jax.jit(trainer.tracker)
    sharp = [r.result.records[-1]["sharpness"] for r in res]
    assert len(set(sharp)) == len(sharp)  # four runs, four different values
    for r, s in zip(res, sharp):
        p = jax.tree.map(jnp.asarray, r.result.state.params)
        want = tracker(p, None, 0.0, (data["x_curv"], data["y_curv"]))["sharpness"]
        np.testing.assert_allclose(s, want, rtol=1e-4)
        assert [rec["step"] for rec in r.result.records if "sharpness" in rec] == [0, 10, 20]
