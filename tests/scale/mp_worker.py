"""The program every process of the multi-process test runs (an experiment entry point, like
``python -m experiments.eos_weight_decay``): a 4-run sweep in <workdir>/sweep and a checkpointed data-parallel
run in <workdir> itself, both through the library's writers; results.json (process 0) holds final parameters.

    python tests/scale/mp_worker.py --workdir W [--coordinator_address=localhost:P --num_processes=2 --process_id=i]

JAXLAB_TEST_KILL_AT=<step>:<process>: that process kills itself (SIGKILL) after that step of the run.
"""
import os
import signal
import sys

import jax
import numpy as np

from jaxlab import cli
from jaxlab.distributed import is_writer
from jaxlab.experiment import write_grid_outputs
from jaxlab.io import write_json
from jaxlab.sweep import sweep
from jaxlab.train.resume import run_with_checkpoints


def _kill_hook():
    spec = os.environ.get("JAXLAB_TEST_KILL_AT")
    if not spec:
        return []
    step, proc = map(int, spec.split(":"))

    def hook(state, s, records):
        if s == step and jax.process_index() == proc:
            print(f"[worker {proc}] killing myself after step {s}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    return [hook]


def leaves(tree):
    return [np.asarray(x).tolist() for x in jax.tree.leaves(tree)]


def main(config, workdir):
    sweep_dir, run_dir = os.path.join(workdir, "sweep"), workdir  # run: checkpoints in workdir/checkpoints (cli resume)
    os.makedirs(sweep_dir, exist_ok=True)
    os.makedirs(run_dir, exist_ok=True)
    res = sweep(config, workdir=sweep_dir, log=None)
    write_grid_outputs(res, sweep_dir)
    run = run_with_checkpoints(config, config.seed, run_dir, callbacks=_kill_hook())
    from jaxlab.train.loop import fetch

    out = {"process_count": jax.process_count(), "devices": jax.device_count(),
           "sweep_mesh": res.summary["sweep"]["mesh"],
           "sweep": [{"coords": r.coords, "summary": r.result.summary, "params": leaves(r.result.state.params)}
                     for r in res],
           "run": {"summary": run.summary, "records": run.records, "params": leaves(fetch(run.state.params))}}
    if is_writer():
        write_json(os.path.join(workdir, "results.json"), out)
    # every process says whether it is the writer (the test checks exactly one is)
    write_json(os.path.join(workdir, f"process{jax.process_index()}.json"), {"writer": is_writer()})


if __name__ == "__main__":
    cli.main(main, __file__)
