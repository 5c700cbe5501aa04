"""Every bad command-line input is one line on stderr, exit code 2, before any compute and before the workdir is
touched: a bad flag or value, a number that is not finite, a ``--config.KEY`` flag that a sweep axis also sets, a
workdir that cannot be written; and ``python -m experiments`` lists the experiments."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = [  # (experiment, arguments, text the one line must contain)
    ("eos_weight_decay", ["--config.sweep.axes=optim.lr=abc"], "optim.lr='abc'"),
    ("eos_weight_decay", ["--config.sweep.axes=optim.lr"], "not of the form path=v1,v2"),
    ("eos_weight_decay", ["--config.sweep.axes=optim.nope=1"], "config.optim.nope: no such key"),
    ("eos_weight_decay", ["--config.train.batch_size=100000"], "train.batch_size=100000"),
    ("eos_weight_decay", ["--config=experiments/configs/nope.py"], "nope.py: no such file"),
    ("eos_weight_decay", ["--config.trian.steps=3"], "did you mean train?"),
    ("eos_weight_decay", ["--config.train.steps=abc"], "--config.train.steps=abc"),
    ("eos_weight_decay", ["--config.optim.lr=-0.1"], "optim.lr=-0.1"),
    ("eos_weight_decay", ["--config.curvature.quantities=('sharpnes',)"], "did you mean 'sharpness'"),
    ("wsm", ["--config.wsm.counts=(1,)"], "wsm.counts"),
    ("wsm", ["--config.sweep.axes=optim.lr=0.1"], "config.sweep.axes"),
    ("schedules", ["--config.sweep.axes=model.widths=(3,3)"], "cannot be swept here"),
    ("eos_weight_decay", ["--config.optim.lr=inf"], "config.optim.lr=inf: must be a finite number"),
    ("eos_weight_decay", ["--config.optim.b1=nan"], "config.optim.b1=nan: must be a finite number"),
    ("eos_weight_decay", ["--config.sweep.axes=optim.weight_decay=0,1e999"], "=inf: must be a finite number"),
    ("eos_weight_decay", ["--config.optim.lr=0.05"],  # the config's sweep.axes also sets optim.lr
     "--config.optim.lr=0.05 conflicts with config.sweep.axes, which sets optim.lr=0.1,0.2"),
    ("eos_weight_decay", ["--config.sweep.axes=optim.lr=0.1,0.2", "--config.optim.lr=0.3"], "conflicts with"),
    ("eos_weight_decay", ["--workdir=/proc/nope"], "--workdir=/proc/nope: cannot write there"),
    ("eos_weight_decay", ["--workdir=tests/test_cli_errors.py"], "cannot write there (not a directory)"),
]


@pytest.mark.parametrize("experiment,args,needle", CASES, ids=[f"{e}:{a[0]}" for e, a, _ in CASES])
def test_bad_input_is_one_line(tmp_path, experiment, args, needle):
    workdir = tmp_path / "w"
    proc = subprocess.run([sys.executable, "-m", f"experiments.{experiment}", f"--workdir={workdir}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not workdir.exists()


def test_existing_results_are_kept(tmp_path):
    """A workdir with results is refused (one line, exit 2) and left byte for byte as it was."""
    (tmp_path / "summary.json").write_text('{"kept": true}\n')
    proc = subprocess.run([sys.executable, "-m", "experiments.eos_weight_decay", f"--workdir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--overwrite" in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"error: --workdir={tmp_path} already holds results"), proc.stderr
    assert (tmp_path / "summary.json").read_text() == '{"kept": true}\n'
    assert sorted(os.listdir(tmp_path)) == ["summary.json"]


def test_experiments_are_listed():
    proc = subprocess.run([sys.executable, "-m", "experiments"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = [f[:-3] for f in os.listdir(os.path.join(ROOT, "experiments"))
             if f.endswith(".py") and f not in ("__init__.py", "__main__.py", "optim_studies.py")]
    for name in names:
        line = next((ln for ln in proc.stdout.splitlines() if ln.strip().startswith(name + " ")), "")
        assert line and "[" in line, f"{name} missing or without CPU time:\n{proc.stdout}"


def test_listed_times_are_the_documented_ones():
    """Each experiment's CPU_TIME is the time docs/experiments.md gives for its plain command."""
    from experiments.__main__ import experiments

    rows = open(os.path.join(ROOT, "docs", "experiments.md"), encoding="utf-8").read().splitlines()
    for name, purpose, cpu in experiments():
        row = next((r for r in rows if r.startswith(f"| `python -m experiments.{name}`")
                    or r.startswith(f"| `python -m experiments.{name} --workdir")), None)
        assert row is not None, f"docs/experiments.md has no row for {name}"
        assert purpose and row.rstrip(" |").rsplit("|", 1)[1].strip() == cpu, (name, cpu, row)
