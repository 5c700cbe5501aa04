import base64
import json
import subprocess
import sys


from jaxlab.experiment import run_grid, write_grid_outputs
from jaxlab.io import prepare_workdir, read_metrics, write_config
from jaxlab.report import write_report


def test_grid_outputs_and_report(tiny_config, tmp_path):
    tiny_config.sweep.axes = "optim.weight_decay=0,0.01"
    workdir = prepare_workdir(str(tmp_path / "run"))
    write_config(workdir, tiny_config)
    results = run_grid(tiny_config, workdir, progress=False)
    write_grid_outputs(results, workdir)
    records = read_metrics(workdir)
    assert len(records) == 2 * 5 and {r["run"]["optim.weight_decay"] for r in records} == {0, 0.01}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [r["optim.weight_decay"] for r in summary["runs"]] == [0, 0.01]

    page = open(write_report(workdir, "html")).read()
    png = (tmp_path / "run" / "loss_curves.png").read_bytes()
    assert base64.b64encode(png).decode()[:200] in page  # the plot is embedded, not linked
    assert page.count("<tr>") >= 3 and "optim.weight_decay" in page
    md = open(write_report(workdir, "md")).read()
    assert "![loss_curves.png](loss_curves.png)" in md and "| seed |" in md


def test_report_on_unfinished_dir_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "experiments.report", f"--workdir={tmp_path}"],
                          capture_output=True, text=True, timeout=60,
                          cwd=__file__.rsplit("/tests/", 1)[0])
    assert proc.returncode == 2 and "summary.json" in proc.stderr
