"""Curvature on a data-sharded curvature set (8 forced host devices, in a subprocess) gives the one-device
numbers: λ1..λk (adaptive Lanczos on HVPs), Hutchinson trace, NTK λ1 and Adam-preconditioned λ1, with whole-set and
chunked HVPs (chunks within each shard). Tolerance 1e-5 relative (float32 reduction order only: same probes)."""
import numpy as np
from scale_testing import run_script

SCRIPT = r"""
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxlab import data as data_lib, mesh as mesh_lib
from jaxlab import optim
from jaxlab.schema import base_config
from jaxlab.train import make_train

c = base_config()
c.data.num_train, c.data.num_test = 400, 80   # 400 = 8 shards of 50; chunk 16: 3 chunks + 2 left per shard
c.model.widths = (32, 32)
c.loss.name = "mse"
c.optim.name = "adam"
c.optim.lr = 1e-3
c.train.steps, c.train.log_every = 10, 5
c.curvature.every = 5
c.curvature.quantities = ("sharpness", "eig_gap", "trace", "ntk", "preconditioned")
c.curvature.num_iters, c.curvature.tol = 12, 1e-3   # adaptive: stops on its Ritz residuals or at the cap
dataset = data_lib.get_dataset(c.data)
hp = optim.traced_numbers(c.optim)
mesh = mesh_lib.make_mesh(c.mesh)  # data=8
out = {}
for chunk in (0, 16):
    c.curvature.chunk_size = chunk
    one = make_train(c, dataset)
    state = jax.jit(one.init)(jax.random.PRNGKey(0), hp)
    data = one.device_data(dataset)
    state, _ = jax.jit(one.advance, static_argnames="num_steps")(state, hp, data, num_steps=5)  # Adam has v
    ref, _ = jax.jit(one.measure, static_argnames=("test", "curvature"))(state, hp, data, test=False, curvature=True)
    sharded = make_train(c, dataset, data_shards=mesh_lib.num_shards(mesh))
    sdata = mesh_lib.place_examples(mesh, data)
    assert sdata["x_curv"].sharding.spec == P(("data", "fsdp")), sdata["x_curv"].sharding
    sstate = jax.device_put(state, mesh_lib.replicated(mesh))
    got, _ = jax.jit(sharded.measure, static_argnames=("test", "curvature"))(sstate, hp, sdata, test=False,
                                                                          curvature=True)
    out[str(chunk)] = {"ref": jax.tree.map(float, ref), "got": jax.tree.map(float, got)}
print(json.dumps(out))
"""


def test_curvature_on_sharded_batches_matches_unsharded():
    out = run_script(SCRIPT)
    for chunk, r in out.items():
        ref, got = r["ref"], r["got"]
        for k in ("sharpness", "eig_2", "hessian_trace", "ntk_max", "preconditioned_sharpness"):
            assert np.isfinite(ref[k]), (chunk, k)
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, err_msg=f"chunk={chunk} {k}")
    # chunked and whole-set HVPs describe the same Hessian
    np.testing.assert_allclose(out["16"]["ref"]["sharpness"], out["0"]["ref"]["sharpness"], rtol=1e-5)
