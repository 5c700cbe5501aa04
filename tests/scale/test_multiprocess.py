"""Two real processes on localhost (jax.distributed, gloo CPU collectives, 2 forced host devices each) running
tests/scale/mp_worker.py: a 4-run sweep and a checkpointed data-parallel run equal one process on one device to
1e-5 relative; exactly one process writes outputs; a process killed mid-run makes its peer exit non-zero within
60 s (coordinator heartbeat 10 s); resuming the killed run gives the uninterrupted result."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from scale_testing import HERE, ROOT, env, rel

WORKER = os.path.join(HERE, "mp_worker.py")
HEARTBEAT_S = 10


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def launch(workdir: str, processes: int, devices: int, extra_env: dict | None = None) -> list[subprocess.Popen]:
    port = _port()
    procs = []
    for i in range(processes):
        args = [sys.executable, WORKER, f"--workdir={workdir}"]
        if processes > 1:
            args += [f"--coordinator_address=localhost:{port}", f"--num_processes={processes}", f"--process_id={i}",
                     f"--heartbeat_timeout_s={HEARTBEAT_S}"]
        log = open(os.path.join(os.path.dirname(workdir), f"{os.path.basename(workdir)}-{i}.log"), "w")
        procs.append(subprocess.Popen(args, env={**env(devices), **(extra_env or {})}, cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT))
    return procs


def wait_ok(procs, workdir, timeout=600):
    for i, p in enumerate(procs):
        rc = p.wait(timeout=timeout)
        log = open(os.path.join(os.path.dirname(workdir), f"{os.path.basename(workdir)}-{i}.log")).read()
        assert rc == 0, f"process {i} exited {rc}:\n{log[-3000:]}"
    with open(os.path.join(workdir, "results.json")) as f:
        return json.load(f)


def assert_same(a: dict, b: dict, tol=1e-5):
    for ra, rb in zip(a["sweep"], b["sweep"]):
        assert ra["coords"] == rb["coords"]
        for x, y in zip(ra["params"], rb["params"]):
            assert rel(x, y) < tol, ra["coords"]
    for k in ("final_train_loss", "final_sharpness", "final_test_loss"):
        assert rel(a["run"]["summary"][k], b["run"]["summary"][k]) < tol, k
    for x, y in zip(a["run"]["params"], b["run"]["params"]):
        assert rel(x, y) < tol


@pytest.fixture(scope="module")
def two_and_one(tmp_path_factory):
    """The uninterrupted 2-process run and the 1-process, 1-device reference, started together."""
    root = tmp_path_factory.mktemp("mp")
    two, one = str(root / "two"), str(root / "one")
    p2, p1 = launch(two, 2, 2), launch(one, 1, 1)
    return two, wait_ok(p2, two), wait_ok(p1, one)


def test_two_processes_equal_one_process_and_one_writes(two_and_one):
    two, res2, res1 = two_and_one
    assert res2["process_count"] == 2 and res2["devices"] == 4 and res1["devices"] == 1
    assert res2["sweep_mesh"] == {"runs": 4, "data": 1, "fsdp": 1}
    assert_same(res2, res1)
    writers = [json.load(open(os.path.join(two, f"process{i}.json")))["writer"] for i in range(2)]
    assert writers == [True, False]
    # one writer: every record once (two appending writers would double them)
    assert len(open(os.path.join(two, "metrics.jsonl")).readlines()) == 5         # steps 0, 10, ..., 40
    assert len(open(os.path.join(two, "sweep", "metrics.jsonl")).readlines()) == 4 * 5   # 4 runs
    for f in ("config.json", "sweep/summary.json", "sweep/loss_curves.png"):
        assert os.path.exists(os.path.join(two, f)), f
    assert sorted(os.listdir(os.path.join(two, "checkpoints", "run")))[-1] == "40"


def test_killed_process_fails_its_peer_and_the_run_resumes(two_and_one, tmp_path):
    _, uninterrupted, _ = two_and_one
    wd = str(tmp_path / "killed")
    procs = launch(wd, 2, 2, {"JAXLAB_TEST_KILL_AT": "30:1"})  # process 1 dies after step 30 of the run
    rc1 = procs[1].wait(timeout=600)
    died = time.monotonic()
    assert rc1 == -9
    try:
        rc0 = procs[0].wait(timeout=60)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        pytest.fail("process 0 still running 60 s after its peer died")
    waited = time.monotonic() - died
    assert rc0 != 0, "process 0 exited 0 although its peer died"
    print(f"process 0 exited {rc0} {waited:.1f} s after process 1 was killed")
    steps = [int(s) for s in os.listdir(os.path.join(wd, "checkpoints", "run")) if s.isdigit()]
    assert steps and 0 < max(steps) < 40, steps  # killed mid-way, with a checkpoint to resume from
    resumed = wait_ok(launch(wd, 2, 2), wd)
    assert_same(resumed, uninterrupted)
    recs = [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))]
    assert [r["step"] for r in recs] == [0, 10, 20, 30, 40]
    for ra, rb in zip(recs, uninterrupted["run"]["records"]):
        for k in ra:
            np.testing.assert_allclose(ra[k], rb[k], rtol=1e-5, atol=1e-7, err_msg=k)
