"""Step time of a data-parallel run against the device count, and the share of it spent communicating.

    python -m jaxlab.bench.scale                         # the EoS config (MLP, 1000 MNIST-1D examples, full batch)
    python -m jaxlab.bench.scale --devices=1,2,4 --steps=20 --repeats=5

For each device count n a subprocess is started with n forced host devices (XLA reads the count once, at start)
and times one jitted chunk of ``--steps`` optimiser steps on the mesh data=n (min of ``--repeats``, after the
compile). The communication share compares that chunk with the same per-device work without the cross-device
reduction: a ``shard_map`` of the step in which every device trains on its own shard alone (no all-reduce),
    comm share = 1 − t(no collectives) / t(GSPMD data parallel).
On a CPU the forced host devices share the machine's cores, so the step time cannot fall with n here; the table
shows what the mesh costs (collectives, per-device overhead). On GPUs/TPUs each device has its own compute.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from jaxlab.mesh import host_devices_env

CHILD = r"""
import functools, json, sys
import jax, numpy as np
from jax.sharding import PartitionSpec as P
from jaxlab import data as data_lib, mesh as mesh_lib, optim
from jaxlab.bench import timed
from jaxlab.bench.scale import bench_config
from jaxlab.train import Compiled, make_train

steps, repeats = int(sys.argv[1]), int(sys.argv[2])
config = bench_config()
ds = data_lib.get_dataset(config.data)
mesh = mesh_lib.make_mesh(config.mesh)
trainer = make_train(config, ds, data_shards=mesh_lib.num_shards(mesh))
fns = Compiled(trainer, mesh)
hp = optim.traced_numbers(config.optim)
data = fns.put_data(trainer.device_data(ds))
state = fns.init(np.asarray(jax.random.PRNGKey(0)), hp)
advance = jax.jit(trainer.advance, static_argnames="num_steps")  # not donated: the state is reused
block = jax.block_until_ready
t_dp = timed(lambda: block(advance(state, hp, data, num_steps=steps)), repeats, reduce=min)
t_local = t_dp
if mesh.size > 1:  # every device on its own shard: the same arithmetic, no cross-device reduction
    ex = P(mesh_lib.EXAMPLES)
    specs = {k: ex if v.sharding.spec == ex else P() for k, v in data.items()}
    local = jax.jit(jax.shard_map(functools.partial(trainer.advance, num_steps=steps), mesh=mesh,
                                  in_specs=(P(), P(), specs), out_specs=P(), check_vma=False))
    t_local = timed(lambda: block(local(state, hp, data)), repeats, reduce=min)
print(json.dumps({"devices": mesh.size, "t_step": t_dp / steps, "t_local": t_local / steps}))
"""


def bench_config():
    """The EoS experiment's config (experiments/configs/eos_weight_decay.py's numbers), curvature off."""
    from jaxlab.schema import base_config

    c = base_config()
    c.data.name, c.data.num_train, c.data.standardize = "mnist1d", 1000, True
    c.model.name, c.model.widths, c.model.activation, c.model.init_scheme = "mlp", (200, 200), "tanh", "torch"
    c.loss.name = "mse"
    c.optim.name, c.optim.lr = "sgd", 0.1
    c.train.batch_size, c.train.progress = 0, False
    return c


def measure(devices: int, steps: int, repeats: int) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(repeats)], env=host_devices_env(devices, root),
                          capture_output=True,
                          text=True, timeout=900)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", default="1,2,4,8")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    rows = [measure(int(n), args.steps, args.repeats) for n in args.devices.split(",")]
    base = rows[0]["t_step"]
    print(f"data-parallel step time, EoS config (MLP 40-200-200-10, 1000 examples, full batch), "
          f"{os.cpu_count()} CPU cores")
    print(f"{'devices':>7} {'ms/step':>9} {'vs first':>9} {'no-comm ms':>11} {'comm share':>11}")
    for r in rows:
        share = max(0.0, 1.0 - r["t_local"] / r["t_step"]) if r["devices"] > 1 else 0.0
        print(f"{r['devices']:>7} {1e3 * r['t_step']:>9.2f} {r['t_step'] / base:>8.2f}x "
              f"{1e3 * r['t_local']:>11.2f} {share:>10.1%}")
    return rows


if __name__ == "__main__":
    main()
