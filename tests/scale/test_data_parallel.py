"""A run on a data (× fsdp) mesh and a sweep on a runs × data mesh give the one-device numbers (8 forced host
devices, in a subprocess). Tolerance 1e-5 relative: the mesh changes only the float32 reduction order."""
import numpy as np
from scale_testing import rel, run_script

RUN = r"""
import json
import jax, numpy as np
from scale_testing import eos_config
from jaxlab.train import run

assert jax.device_count() == 8
out = {}
for name, mesh in (("one", None), ("data8", {"data": 8}), ("data4_fsdp2", {"data": 4, "fsdp": 2})):
    c = eos_config(50)
    for k, v in (mesh or {}).items():
        setattr(c.mesh, k, v)
    r = run(c, 0, devices=jax.devices()[:1] if mesh is None else None)
    out[name] = {"loss": r.summary["final_train_loss"], "sharpness": r.summary["final_sharpness"],
                 "records": r.records, "specs": [str(getattr(x.sharding, "spec", "")) for x in jax.tree.leaves(r.state.params)],
                 "params": [np.asarray(x).tolist() for x in jax.tree.leaves(jax.device_get(r.state.params))]}
print(json.dumps(out))
"""


def test_data_and_fsdp_meshes_match_one_device():
    out = run_script(RUN)
    one = out["one"]
    assert "fsdp" in " ".join(out["data4_fsdp2"]["specs"])  # parameters really are split
    for name in ("data8", "data4_fsdp2"):
        got = out[name]
        assert rel(got["loss"], one["loss"]) < 1e-5, name
        assert rel(got["sharpness"], one["sharpness"]) < 1e-5, name
        for a, b in zip(got["params"], one["params"]):
            assert rel(a, b) < 1e-5, name
        for ra, rb in zip(got["records"], one["records"]):
            assert ra.keys() == rb.keys()
            for k in ra:
                np.testing.assert_allclose(ra[k], rb[k], rtol=1e-5, atol=1e-6, err_msg=f"{name} {k}")


SWEEP = r"""
import json
import jax, numpy as np
from scale_testing import eos_config
from jaxlab.sweep import sweep

axes = {"optim.lr": [0.1, 0.2], "optim.weight_decay": [0.0, 0.01]}
out = {}
for name, devices, shape in (("mesh", None, (4, 2)), ("one", jax.devices()[:1], (0, 0))):
    c = eos_config(50)
    c.mesh.runs, c.mesh.data = shape
    res = sweep(c, seeds=1, axes=axes, devices=devices, log=None)
    out[name] = {"mesh": res.summary["sweep"]["mesh"],
                 "runs": [{"coords": r.coords, "records": r.result.records,
                           "params": [np.asarray(x).tolist() for x in jax.tree.leaves(r.result.state.params)]}
                          for r in res]}
print(json.dumps(out))
"""


def test_sweep_on_runs_by_data_mesh_matches_one_device():
    out = run_script(SWEEP)
    assert out["mesh"]["mesh"] == {"runs": 4, "data": 2, "fsdp": 1}
    assert out["one"]["mesh"] == {"runs": 1, "data": 1, "fsdp": 1}
    for a, b in zip(out["mesh"]["runs"], out["one"]["runs"]):
        assert a["coords"] == b["coords"]
        for x, y in zip(a["params"], b["params"]):
            assert rel(x, y) < 1e-5, a["coords"]
        for ra, rb in zip(a["records"], b["records"]):
            for k in ra:
                np.testing.assert_allclose(ra[k], rb[k], rtol=1e-5, atol=1e-6, err_msg=f"{a['coords']} {k}")
