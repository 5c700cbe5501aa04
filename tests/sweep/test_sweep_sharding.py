"""The run axis sharded over 4 host devices gives the runs of one device (uneven grid: padded and masked)."""
import json
import os
import subprocess
import sys

import numpy as np

from jaxlab.mesh import host_devices_env

SCRIPT = r"""
import json, sys
import jax
from sweep_testing import sweep_config
from jaxlab.sweep import sweep

assert jax.device_count() == 4, jax.devices()
config = sweep_config()
axes = {"optim.lr": [0.05, 0.1, 1e4]}  # 3 seeds x 3 lrs = 9 runs over 4 devices: 3 padding runs; one point diverges
four = sweep(config, seeds=3, axes=axes, log=None)
one = sweep(config, seeds=3, axes=axes, devices=jax.devices()[:1], log=None)
out = {name: {"info": res.summary["sweep"]["groups"], "devices": res.summary["sweep"]["devices"],
              "runs": [{"coords": r.coords, "records": r.result.records, "summary": r.result.summary,
                        "params": [x.tolist() for x in jax.tree.leaves(r.result.state.params)]} for r in res]}
       for name, res in (("four", four), ("one", one))}
json.dump(out, sys.stdout)
"""


def test_four_host_devices_match_one():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=host_devices_env(4, root, here), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    four, one = out["four"], out["one"]
    assert four["devices"] == 4 and one["devices"] == 1
    assert four["info"][0]["runs_per_chunk"] == 12 and four["info"][0]["padding"] == 3
    assert one["info"][0]["runs_per_chunk"] == 9 and one["info"][0]["padding"] == 0
    assert len(four["runs"]) == len(one["runs"]) == 9
    for a, b in zip(four["runs"], one["runs"]):
        assert a["coords"] == b["coords"]
        assert a["summary"]["diverged"] == b["summary"]["diverged"] == (a["coords"]["optim.lr"] == 1e4)
        assert a["summary"]["diverged_step"] == b["summary"]["diverged_step"]
        if a["summary"]["diverged"]:
            continue  # the blow-up's own numbers are chaotic; its flag and step are what is compared
        # Each device compiles the vmapped program for its 3 runs, one device for all 9: XLA tiles the batched
        # matmuls differently, so numbers agree to float32 rounding (not bitwise), as against run() itself.
        for x, y in zip(a["params"], b["params"]):
            np.testing.assert_allclose(x, y, rtol=2e-5, atol=1e-6)
        for ra, rb in zip(a["records"], b["records"]):
            assert ra.keys() == rb.keys()
            for k in ra:
                np.testing.assert_allclose(ra[k], rb[k], rtol=2e-5, atol=1e-6, err_msg=k)
