"""The vmapped sweep against separate runs, divergence isolation, chunking, structural groups and outputs."""
import json
import os

import jax
import numpy as np
import pytest

from jaxlab.experiment import run_grid, write_grid_outputs
from jaxlab.sweep import sweep
from jaxlab.sweep.plan import point_numbers
from jaxlab.train import run

from sweep_testing import sweep_config

# A vmapped program batches the same arithmetic as a one-run program, but XLA may fuse or associate its
# reductions differently: per-run numbers agree to float32 rounding, compounded over 20 steps.
RTOL, ATOL = 2e-5, 1e-6
METRICS = ("train_loss", "test_loss", "train_accuracy", "batch_loss", "grad_norm", "param_norm")
AXES = {"optim.lr": [0.05, 0.1], "optim.weight_decay": [0.01]}  # both traced, wd away from its default


def assert_records_close(got, want):
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for k in METRICS:
        assert [k in r for r in got] == [k in r for r in want], k
        np.testing.assert_allclose([r[k] for r in got if k in r], [r[k] for r in want if k in r],
                                   rtol=RTOL, atol=ATOL, err_msg=k)


@pytest.fixture(scope="module")
def healthy():
    """seeds 0, 1 × lr 0.05, 0.1 (weight decay 0.01): runs in order (0, .05), (1, .05), (0, .1), (1, .1)."""
    return sweep(sweep_config(), seeds=[0, 1], axes=AXES, log=None)


def test_sweep_matches_separate_runs(healthy):
    """Each vmapped run (minibatches from its own seed, its own lr and weight decay) == run(config, seed, hp)."""
    config = sweep_config()
    for r in (healthy.runs[1], healthy.runs[2]):
        ref = run(config, r.coords["seed"], hp=point_numbers(config, r.coords), progress=False)
        assert_records_close(r.result.records, ref.records)
        assert r.result.config.optim.lr == r.coords["optim.lr"] and r.result.config.optim.weight_decay == 0.01
        for a, b in zip(jax.tree.leaves(r.result.state.params), jax.tree.leaves(ref.state.params)):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_divergent_run_is_frozen_flagged_and_isolated(healthy):
    """A planted blow-up (lr 1e4) is flagged with its step and frozen; the other runs are bitwise what they are
    when the same slot holds a healthy run, and their training states bitwise what they are without the slot."""
    config = sweep_config()
    planted = sweep(config, seeds=[0, 1], axes={**AXES, "optim.lr": [0.05, 1e4]}, log=None)
    alone = sweep(config, seeds=[0, 1], axes={**AXES, "optim.lr": [0.05]}, log=None)
    for bad in planted.runs[2:]:
        s = bad.result.summary
        assert s["diverged"] and 0 <= s["diverged_step"] < config.train.steps
        assert bad.result.records[-1]["diverged"] is True
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(bad.result.state.params))  # frozen before inf
        assert int(bad.result.state.step) == config.train.steps
    for p, h, a in zip(planted.runs[:2], healthy.runs[:2], alone.runs):
        assert not p.result.summary["diverged"]
        assert p.result.records == h.result.records  # bitwise, every metric
        for x, y, z in zip(jax.tree.leaves(p.result.state), jax.tree.leaves(h.result.state),
                           jax.tree.leaves(a.result.state)):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)
    g = planted.summary["grid"][1]
    assert g["num_diverged"] == 2 and all(m is None for m in g["metrics"].values())


def test_chunks_and_structural_groups(healthy, capsys):
    """A structural axis (a loop of vmapped groups) with one run per program call gives the runs of one program."""
    config = sweep_config()
    config.sweep.chunk_size = 1
    res = sweep(config, seeds=[0], axes={"model.widths": [(8,), (16, 16)], **AXES})
    err = capsys.readouterr().err
    assert "structural axes model.widths" in err and "2 groups" in err and "2 program call(s) of 1 runs" in err
    assert [tuple(r.result.config.model.widths) for r in res] == [(8,), (8,), (16, 16), (16, 16)]
    assert jax.tree.leaves(res.runs[0].result.state.params)[1].shape == (40, 8)  # Dense_0 kernel, width 8
    for got, want in zip(res.runs[2:], (healthy.runs[0], healthy.runs[2])):
        assert got.coords == {**want.coords, "model.widths": (16, 16)}
        assert_records_close(got.result.records, want.result.records)


def test_memory_budget_splits_into_chunks(capsys):
    from jaxlab import data as data_lib
    from jaxlab.sweep import memory
    from jaxlab.train import make_train

    config = sweep_config()
    ds = data_lib.get_dataset(config.data)
    trainer = make_train(config, ds, batched=True)
    per_run, shared = memory.bytes_per_run(trainer, trainer.device_data(ds))
    assert per_run > 0 and shared > 0
    config.sweep.memory_budget_mb = (shared + 2.5 * per_run) / memory.MIB  # room for two runs
    res = sweep(config, seeds=3)
    assert "at most 2 runs per device" in capsys.readouterr().err
    assert res.summary["sweep"]["groups"][0] == {"structural": {}, "runs": 3, "chunks": 2, "runs_per_chunk": 2,
                                                  "padding": 1}
    assert [r.coords["seed"] for r in res] == [0, 1, 2] and all(len(r.result.records) == 3 for r in res)


def test_cnn_sweep_matches_run():
    """The CNN vmapped in its im2col form (model.for_vmap) trains as run() (the two forms are compared in tests/sweep/test_sweep_cnn.py)."""
    config = sweep_config("cnn")
    res = sweep(config, seeds=2, log=None)
    assert_records_close(res.runs[1].result.records, run(config, 1, progress=False).records)


def test_run_grid_writes_coordinates_statistics_and_plots(tmp_path):
    config = sweep_config()
    config.sweep.seeds, config.sweep.axes = 3, "optim.weight_decay=0,0.01"
    results = run_grid(config, str(tmp_path))
    summary = write_grid_outputs(results, str(tmp_path))
    lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
    assert len(lines) == 6 * 3  # 6 runs × records at steps 0, 10, 20
    assert {tuple(sorted(x["run"].items())) for x in lines} == {
        (("optim.weight_decay", wd), ("seed", s)) for wd in (0, 0.01) for s in (0, 1, 2)}
    on_disk = json.load(open(tmp_path / "summary.json"))
    assert on_disk["grid"] == json.loads(json.dumps(summary["grid"]))
    for g in summary["grid"]:
        finals = [r["final_train_loss"] for r in summary["runs"]
                  if r["optim.weight_decay"] == g["point"]["optim.weight_decay"]]
        m = g["metrics"]["final_train_loss"]
        assert m["n"] == 3 and g["seeds"] == [0, 1, 2]
        np.testing.assert_allclose([m["mean"], m["std"], m["min"], m["max"]],
                                   [np.mean(finals), np.std(finals, ddof=1), min(finals), max(finals)], rtol=1e-6)
    assert os.path.getsize(tmp_path / "loss_bands.png") > 0 and os.path.getsize(tmp_path / "loss_curves.png") > 0
