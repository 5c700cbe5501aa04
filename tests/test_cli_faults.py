"""Faults met mid-run, through the real command line: a corrupt checkpoint on resume is one warning line and the run
completes; a full disk while the run checkpoints is one error line (the path, the command that resumes), exit
code 1, and after space is freed that same command resumes and ends with the records of an uninterrupted run.

The full disk is real: a 8 MiB tmpfs, mounted in a user and mount namespace of its own (``unshare -rm``), filled
to 1 MiB before the run starts; the run's checkpoints fill the rest. Without unprivileged user namespaces the
test is skipped."""
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from jaxlab.io import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
# Ten checkpoints of about 190 KiB each (all kept): more than the 1 MiB the full disk leaves, so a save fails.
OVERRIDES = ["--config.data.num_train=256", "--config.data.num_test=128", "--config.model.widths=(32,32)",
             "--config.train.steps=100", "--config.checkpoint.every=10", "--config.checkpoint.keep_last=0",
             "--config.sweep.axes=", "--config.train.progress=False", "--config.curvature.every=0"]


def command(workdir) -> list[str]:
    return [sys.executable, "-m", "experiments.eos_weight_decay", f"--workdir={workdir}", *OVERRIDES]


def assert_no_traceback(text: str):
    assert "Traceback" not in text and "Error:" not in text, text[-3000:]


def own_lines(stderr: str) -> list[str]:
    """stderr without the experiment's progress lines ("[eos_weight_decay] ...", "[sweep] ...")."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("[")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's workdir."""
    workdir = tmp_path_factory.mktemp("reference") / "w"
    proc = subprocess.run(command(workdir), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert own_lines(proc.stderr) == [], proc.stderr
    return workdir


def test_corrupt_checkpoint_is_one_warning_line(tmp_path, reference):
    workdir = tmp_path / "w"
    shutil.copytree(reference, workdir)
    params = workdir / "checkpoints" / "g0c0" / "100" / "params"
    victim = max((p for p in params.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with open(victim, "r+b") as f:
        f.truncate(10)
    proc = subprocess.run(command(workdir), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_no_traceback(proc.stderr + proc.stdout)
    lines = own_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("warning: skipping checkpoint: checkpoint step 100") and "resuming from step 90" in \
        lines[0], lines[0]
    assert (workdir / "checkpoints" / "g0c0" / "100.corrupt-100").is_dir()
    assert read_metrics(workdir) == read_metrics(reference)


def _can_mount_tmpfs(where) -> bool:
    os.makedirs(where)
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(where))}"],
                           capture_output=True, timeout=60)
    return probe.returncode == 0


def test_full_disk_is_one_line_then_the_same_command_resumes(tmp_path, reference):
    disk, out = tmp_path / "disk", tmp_path / "out"
    if not _can_mount_tmpfs(disk):
        pytest.skip("mounting a small tmpfs needs unprivileged user namespaces (unshare -rm)")
    out.mkdir()
    cmd = shlex.join(command(disk / "w"))
    q = shlex.quote
    script = f"""
        mount -t tmpfs -o size=8m tmpfs {q(str(disk))} || exit 3
        head -c {7 * 2**20} /dev/zero > {q(str(disk / 'filler'))}
        {cmd} 2> {q(str(out / 'first.err'))}; echo $? > {q(str(out / 'first.rc'))}
        rm {q(str(disk / 'filler'))}
        {cmd} 2> {q(str(out / 'second.err'))}; echo $? > {q(str(out / 'second.rc'))}
        cp {q(str(disk / 'w' / 'metrics.jsonl'))} {q(str(out))}/
    """
    done = subprocess.run(["unshare", "-rm", "bash", "-c", script], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    first, second = (out / "first.err").read_text(), (out / "second.err").read_text()

    assert (out / "first.rc").read_text().strip() == "1", first[-3000:]
    assert_no_traceback(first)
    lines = own_lines(first)
    assert len(lines) == 1, first
    # the checkpoint directory, or metrics.jsonl when its next record is the write that finds the disk full
    assert re.match(rf"error: cannot write {re.escape(str(disk / 'w'))}/(checkpoints/g0c0|metrics.jsonl): "
                    r"No space left on device\. ", lines[0]), lines[0]
    said = shlex.split(lines[0].split("resume with the same command: ", 1)[1])
    assert said[1:] == command(disk / "w")[1:], said  # the very command that was run ("python" for the executable)

    assert (out / "second.rc").read_text().strip() == "0", second[-3000:]
    assert "resuming from the checkpoints" in second and own_lines(second) == [], second
    assert read_metrics(out) == read_metrics(reference)
