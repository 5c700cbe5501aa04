"""The streaming merge: equal to the analytic weighted average (and, for a linear model, to the average of the
models' outputs), memory that does not grow with the window, evaluation into summary.json, and bad requests
refused before anything is computed or written."""
import json
import os
import shutil
import tracemalloc
import weakref

import jax
import numpy as np
import pytest

from jaxlab.checkpoint import checkpoint_dir, coefficients
from jaxlab.checkpoint import manager as mgr
from jaxlab.checkpoint import merge as merge_lib
from jaxlab.evaluate import Evaluator
from jaxlab.io import read_json
from jaxlab.train import TrainState


def _state(step, params):
    return TrainState(step=np.array(step, np.int32), params=params, opt_state=(), key=np.zeros(2, np.uint32),
                      ref_loss=np.array(1.0, np.float32), diverged=np.array(False), diverged_step=np.array(-1, np.int32))


def _write_checkpoints(directory, params_by_step):
    m = mgr.open_manager(directory)
    for step, params in params_by_step.items():
        mgr.save(m, step, _state(step, params))
    m.wait_until_finished()
    return m


@pytest.mark.parametrize("scheme", ["uniform", "ema", "cosine", "inverse_sqrt"])
def test_merged_linear_model_is_the_weighted_average(tmp_path, scheme):
    """θ_j of a linear model y = xW + b at steps 10..60; the merge must equal Σ c_j θ_j (float64 reference,
    tolerance float32 rounding: rtol 1e-6), and since the model is linear in θ, f_merged(x) = Σ c_j f_j(x)."""
    rng = np.random.default_rng(0)
    thetas = {s: {"W": rng.normal(size=(7, 3)).astype(np.float32), "b": rng.normal(size=3).astype(np.float32)}
              for s in range(10, 70, 10)}
    m = _write_checkpoints(str(tmp_path), thetas)
    steps = merge_lib.window_steps(mgr.valid_steps(m), window=4, interval=10)
    assert steps == [30, 40, 50, 60]
    c = coefficients(scheme, 4)
    merged = merge_lib.merge_params(m, steps, c)
    for name in ("W", "b"):
        want = sum(cj * thetas[s][name].astype(np.float64) for cj, s in zip(c, steps))
        assert merged[name].dtype == np.float32
        np.testing.assert_allclose(merged[name], want, rtol=1e-6, atol=1e-6)
    x = rng.normal(size=(5, 7))
    f = lambda p: x @ p["W"].astype(np.float64) + p["b"]  # noqa: E731
    np.testing.assert_allclose(f(merged), sum(cj * f(thetas[s]) for cj, s in zip(c, steps)), rtol=1e-5, atol=1e-5)
    m.close()


def test_streaming_merge_memory_does_not_grow_with_the_window(tmp_path, monkeypatch):
    """How it is measured: (1) every parameter array a restore returns is tracked with a weakref finalizer, so
    the most restored bytes alive at once is exact (orbax/tensorstore allocate them outside tracemalloc's view);
    (2) tracemalloc's peak covers the Python/numpy side (the float32 accumulator, temporaries). A merge that
    held its window would keep `window` copies alive; the streaming one keeps one. So the peak is about two
    copies of the parameters (accumulator + the one being read) for a window of 2 or 12."""
    rng = np.random.default_rng(0)
    shapes = {"a": (512, 512), "b": (512,), "c": (512, 1024)}
    params = {s: {k: rng.normal(size=v).astype(np.float32) for k, v in shapes.items()} for s in range(1, 13)}
    nbytes = sum(x.nbytes for x in params[1].values())  # 3.1 MB
    m = _write_checkpoints(str(tmp_path), params)

    live, peak = [0], [0]
    restore = mgr.restore_params

    def tracked(*a, **k):
        out = restore(*a, **k)
        for x in jax.tree.leaves(out):
            live[0] += x.nbytes
            weakref.finalize(x, lambda n=x.nbytes: live.__setitem__(0, live[0] - n))
        peak[0] = max(peak[0], live[0])
        return out

    monkeypatch.setattr(mgr, "restore_params", tracked)
    result = {}
    for window in (2, 12):
        live[0] = peak[0] = 0
        tracemalloc.start()
        merged = merge_lib.merge_params(m, list(range(13 - window, 13)), coefficients("uniform", window))
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.testing.assert_allclose(merged["a"], np.mean([params[s]["a"] for s in range(13 - window, 13)], 0),
                                   rtol=1e-5, atol=1e-6)
        del merged
        result[window] = (peak[0] / nbytes, traced_peak / nbytes)
    m.close()
    assert result[2][0] == result[12][0] == 1.0, result          # one restored copy alive at a time
    # Python/numpy side: the accumulator (1 copy) plus orbax's metadata, which grows by ~30 KB per checkpoint
    # read whatever the parameter size (tensorstore specs it caches), i.e. ~0.1 copies here over 10 more reads.
    assert result[12][1] < result[2][1] + 0.25, result
    assert result[12][1] < 1.5, result


def test_merge_workdir_evaluates_and_keeps_the_summary(tmp_path, reference_run):
    src, _ = reference_run
    workdir = str(tmp_path / "run")
    shutil.copytree(src, workdir)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump({"earlier": 1}, f)
    out = merge_lib.merge_workdir(workdir, "linear", window=3, interval=20,
                                  evaluate=Evaluator(read_json(os.path.join(workdir, "config.json"))))
    assert out["sets"]["run"]["steps"] == [20, 40, 60]
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["earlier"] == 1 and "linear-w3-i20" in summary["merge"]
    ev = summary["merge"]["linear-w3-i20"]["sets"]["run"]
    # The evaluation of the merged checkpoint as written, recomputed independently of the merge's own numbers.
    import orbax.checkpoint as ocp
    saved = ocp.StandardCheckpointer().restore(os.path.join(workdir, ev["path"]))
    config = json.load(open(os.path.join(workdir, "config.json")))
    np.testing.assert_allclose(Evaluator(config)(saved)["test_loss"], ev["merged"]["test_loss"], rtol=1e-6)
    m = mgr.open_manager(checkpoint_dir(workdir), read_only=True)
    manual = {k: sum(c * mgr.restore_params(m, s)[k]["kernel"] for c, s in zip(coefficients("linear", 3), [20, 40, 60]))
              for k in ("Dense_0",)}
    m.close()
    np.testing.assert_allclose(np.asarray(saved["Dense_0"]["kernel"]), manual["Dense_0"], rtol=1e-6, atol=1e-7)
    assert ev["last"]["train_loss"] > 0 and np.isfinite(ev["merged"]["train_loss"])


@pytest.mark.parametrize("kwargs, needle", [
    (dict(scheme="cosin", window=3), "'cosin'"),
    (dict(scheme="uniform", window=50), "window=50"),
    (dict(scheme="uniform", window=3, interval=15), "--interval=15"),
])
def test_bad_merge_requests_fail_before_writing(tmp_path, reference_run, kwargs, needle):
    src, _ = reference_run
    workdir = str(tmp_path / "run")
    shutil.copytree(src, workdir)
    before = {p: open(os.path.join(workdir, p), "rb").read() for p in ("config.json", "metrics.jsonl")}
    with pytest.raises(merge_lib.MergeError, match=needle.replace("(", r"\(")):
        merge_lib.merge_workdir(workdir, **kwargs)
    assert not os.path.exists(os.path.join(workdir, "merged"))
    assert not os.path.exists(os.path.join(workdir, "summary.json"))
    assert before == {p: open(os.path.join(workdir, p), "rb").read() for p in before}


def test_merge_without_evaluate_evaluates_nothing(tmp_path, reference_run):
    src, _ = reference_run
    workdir = str(tmp_path / "run")
    shutil.copytree(src, workdir)
    out = merge_lib.merge_workdir(workdir, "uniform", window=2)
    assert out["sets"]["run"]["steps"] == [50, 60]
    assert "merged" not in out["sets"]["run"] and "last" not in out["sets"]["run"]
    assert os.path.isdir(os.path.join(workdir, out["sets"]["run"]["path"]))


def test_missing_workdir_is_named(tmp_path):
    from experiments.merge import main

    with pytest.raises(merge_lib.MergeError, match="no such directory"):
        merge_lib.merge_workdir(str(tmp_path / "nope"), "uniform", 2)
    assert main(["--workdir", str(tmp_path / "nope"), "--scheme", "uniform", "--window", "2"]) == 2
