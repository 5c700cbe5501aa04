"""Resume = the uninterrupted run, bitwise on CPU: after an exception, after a corrupt checkpoint (skipped with a
warning, metrics cut back, nothing duplicated), and after SIGKILL during a save (a separate process)."""
import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from jaxlab.checkpoint import checkpoint_dir
from jaxlab.train import run_with_checkpoints
from jaxlab.checkpoint import manager as mgr
from jaxlab.io import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Interrupt(Exception):
    pass


def _interrupt_at(step):
    def cb(state, s, records):
        if s == step:
            raise Interrupt(s)
    return cb


def _steps(workdir, tag="run"):
    m = mgr.open_manager(checkpoint_dir(workdir, tag), read_only=True)
    try:
        return mgr.valid_steps(m)
    finally:
        m.close()


def test_resume_after_interrupt_equals_uninterrupted(tmp_path, reference_run, ckpt_config, assert_same_state):
    _, ref = reference_run
    workdir = str(tmp_path)
    with pytest.raises(Interrupt):
        run_with_checkpoints(ckpt_config(), 0, workdir, callbacks=[_interrupt_at(40)])
    assert _steps(workdir) == [10, 20, 30]          # step 40 was held, not written: its record was not on disk
    assert [r["step"] for r in read_metrics(workdir)] == [0, 10, 20, 30]
    res = run_with_checkpoints(ckpt_config(), 0, workdir)
    assert_same_state(res.state, ref.state)
    assert res.records == ref.records
    assert read_metrics(workdir) == ref.records    # nothing lost, nothing duplicated


def test_corrupt_checkpoint_is_skipped_with_a_warning(tmp_path, reference_run, ckpt_config, assert_same_state):
    _, ref = reference_run
    workdir = str(tmp_path)
    with pytest.raises(Interrupt):
        run_with_checkpoints(ckpt_config(), 0, workdir, callbacks=[_interrupt_at(50)])
    assert _steps(workdir) == [10, 20, 30, 40]
    # Truncate the largest data file of step 40's parameters, and tear metrics.jsonl's last line.
    files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(checkpoint_dir(workdir), "40", "params"))
             for f in fs]
    victim = max(files, key=os.path.getsize)
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)
    with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
        f.write('{"step": 50, "train_lo')
    with pytest.warns(RuntimeWarning, match="skipping checkpoint.*step 40"):
        res = run_with_checkpoints(ckpt_config(), 0, workdir)
    assert_same_state(res.state, ref.state)           # resumed from step 30, not from the corrupt 40
    assert read_metrics(workdir) == ref.records and res.records == ref.records
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert len(f.readlines()) == len(ref.records)  # the torn line is gone too


def test_sigkill_during_save_then_resume(tmp_path, assert_same_state):
    """The CLI, killed with SIGKILL while orbax has a save in flight (an uncommitted temporary directory), then
    re-run with the same --workdir: its metrics and final state equal an uninterrupted in-process run."""
    from experiments.configs.eos_weight_decay import get_config
    from jaxlab.experiment import run_grid

    overrides = {"data.num_train": 256, "data.num_test": 128, "model.widths": (32, 32), "train.steps": 200,
                 "checkpoint.every": 10, "checkpoint.keep_last": 0, "sweep.axes": "", "train.progress": False,
                 "curvature.quantities": ("sharpness",)}   # λ1 and its warm-start carry, which the checkpoint holds
    workdir = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "experiments.eos_weight_decay", f"--workdir={workdir}"] + [
        f"--config.{k}={v}" for k, v in overrides.items()]
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    ckdir = checkpoint_dir(workdir, "g0c0")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_mid_save, deadline = False, time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        entries = os.listdir(ckdir) if os.path.isdir(ckdir) else []
        if any(e.isdigit() for e in entries) and any("tmp" in e for e in entries):
            os.kill(proc.pid, signal.SIGKILL)
            killed_mid_save = True
            break
        time.sleep(0.0005)
    proc.wait()
    assert killed_mid_save, f"the run ended before a save was caught in flight: {proc.stderr.read()[-2000:]}"
    assert not os.path.exists(os.path.join(workdir, "summary.json"))
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stderr

    config = get_config()
    for k, v in overrides.items():
        section, key = k.split(".")
        config[section][key] = v
    ref = run_grid(config, None, progress=False)[0].result
    got = [{k: v for k, v in r.items() if k != "run"} for r in read_metrics(workdir)]
    assert got == ref.records
    m = mgr.open_manager(ckdir, read_only=True)
    step, state, _ = mgr.restore_latest(m, jax.tree.map(lambda x: x[None], ref.state))  # a chunk: [1, ...]
    m.close()
    assert step == overrides["train.steps"]
    assert_same_state(state, jax.tree.map(lambda x: x[None], ref.state))
