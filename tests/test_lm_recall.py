"""experiments.mqar_recall's bookkeeping on hand-made results: state sizes, recall per pair count (against each
run's accuracy), recall rows (mean over seeds at the best lr), the claims, the plot, the kernel path of the linear
kinds; and the EoS summary of Adam
runs (preconditioned sharpness NaN before the first update)."""
import math
import os
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from experiments import mqar_recall
from experiments.configs.mqar_recall import get_config
from experiments.configs.mqar_recall_paper import get_config as paper_config
from jaxlab.config import ConfigError
from jaxlab.data import mqar
from jaxlab.eos import eos_run_summary
from jaxlab.losses import accuracy
from jaxlab.models import get_model


def test_state_size_per_kind():
    assert mqar_recall.state_size("gla", 32, 2, 64) == 2 * 16 * 16        # d_k·d_v per head × heads
    assert mqar_recall.state_size("linear", 64, 1, 64) == 64 * 64
    assert mqar_recall.state_size("softmax", 32, 2, 64) == 2 * 64 * 32    # KV cache: keys and values
    assert mqar_recall.state_size("gla", 16, 1, 64, conv_size=4) == 16 * 16 + 3 * 3 * 16   # + q, k, v's last 3 steps


def _run(kind, d, kv, seed, recall, lr=0.003, heads=2):
    coords = {"seed": seed, "model.attention": kind, "model.d_model": d, "model.num_heads": heads, "optim.lr": lr}
    return SimpleNamespace(coords=coords, result=SimpleNamespace(summary={"diverged": False})), kv, recall


def test_recall_rows_pick_the_best_lr_and_plot(tmp_path):
    config = get_config()
    evals = [_run("softmax", 16, 2, 0, 0.8), _run("softmax", 16, 2, 1, 0.6),
             _run("softmax", 16, 2, 0, 0.2, lr=0.01), _run("softmax", 16, 2, 1, 0.3, lr=0.01),
             _run("gla", 16, 2, 0, 0.3, heads=1), _run("gla", 16, 2, 1, 0.1, heads=1)]
    rows, by_lr = mqar_recall.recall_rows(evals, config)
    assert len(by_lr) == 3 and [r["attention"] for r in rows] == ["softmax", "gla"]
    soft, gla = rows
    assert soft["lr"] == 0.003 and math.isclose(soft["recall"], 0.7) and math.isclose(soft["recall_std"], 0.1)
    assert math.isclose(gla["recall_min"], 0.1) and soft["seeds"] == 2 and soft["num_kv_pairs"] == 2
    conv = 3 * (config.model.conv_size - 1) * 16                       # the short convolution's last steps
    assert soft["state_size"] == 2 * config.data.seq_len * 16 + conv and gla["state_size"] == 16 * 16 + conv
    path = mqar_recall.plot_recall(rows, os.path.join(tmp_path, "recall.png"), baselines={2: 0.3})
    assert os.path.getsize(path) > 0
    assert "| 2" in mqar_recall.format_table(rows)


def test_pair_recall_matches_each_runs_accuracy():
    """Recall per pair count, vmapped over runs and chunked (padded), equals losses.accuracy of each run alone on
    the same fresh sequences."""
    config = get_config()
    with config.unlocked():
        config.model.d_model, config.data.kv_pairs_mix, config.data.num_test = 8, (1, 2), 50
        config.data.vocab_size = 5                         # random models then answer some queries right
    model = get_model(config.model, SimpleNamespace(num_classes=config.data.vocab_size))
    tokens, init = np.zeros((1, config.data.seq_len), np.int32), jax.jit(model.init)
    runs = [SimpleNamespace(coords={"seed": s}, result=SimpleNamespace(
        config=config, state=SimpleNamespace(params=init(jax.random.PRNGKey(s), tokens)["params"])))
        for s in range(3)]
    evals = mqar_recall.pair_recall(runs, config, max_floats=3 * 7 * config.data.seq_len * config.data.vocab_size)
    assert [(r.coords["seed"], k) for r, k, _ in evals] == [(s, k) for s in range(3) for k in (1, 2)]
    d, apply = config.data, jax.jit(model.apply)
    for r, k, got in evals:
        x, y = mqar.generate(np.random.default_rng(1000 + k), 50, d.seq_len, d.vocab_size, k, d.kv_pool, d.queries)
        want = float(accuracy(apply({"params": r.result.state.params}, x), y))
        assert abs(got - want) < 1e-6 and got > 0


def _row(kind, d, kv, recall):
    return {"attention": kind, "d_model": d, "num_heads": 1, "num_kv_pairs": kv, "recall": recall,
            "state_size": mqar_recall.state_size(kind, d, 1, 32)}


def test_claims_decided_on_the_rows():
    rows = [_row("softmax", 32, 2, 1.0), _row("softmax", 32, 8, 0.96)]
    rows += [_row("linear", d, kv, r) for d, kv, r in [(8, 2, 0.6), (16, 2, 0.8), (8, 8, 0.1), (16, 8, 0.5)]]
    rows += [_row("gla", d, kv, r) for d, kv, r in [(8, 2, 0.5), (16, 2, 0.5), (8, 8, 0.53), (16, 8, 0.5)]]
    c = mqar_recall.claims(rows)
    assert c["softmax"]["holds"] and c["softmax"]["recall"] == {2: 1.0, 8: 0.96}
    assert c["falls_with_pairs"]["linear"] == {"holds": True, "mean_at_2": 0.7, "mean_at_8": 0.3}
    assert not c["falls_with_pairs"]["gla"]["holds"] and not c["falls_with_pairs"]["holds"]  # 0.515 > 0.5
    linear = c["rises_with_state"]["linear"]
    assert linear["holds"] and linear["recall_at_8_by_state"] == [0.1, 0.5]
    assert c["rises_with_state"]["gla"]["largest_drop"] == 0.03 and not c["rises_with_state"]["holds"]  # > 0.02
    rows[1]["recall"] = 0.94
    assert not mqar_recall.claims(rows)["softmax"]["holds"]


@pytest.mark.parametrize("platform,impl", [("cpu", "xla"), ("cuda", "pallas_gpu")])
def test_lm_linear_kinds_take_the_kernel_path(platform, impl):
    """The LM's linear kinds go through kernels.linear_attention: XLA lowered for the CPU, the Pallas (Triton)
    kernels lowered for cuda from this host; the experiment records which."""
    out = mqar_recall.attention_impl(get_config(), platform)
    assert out["linear_attention_impl"] == {k: [impl] for k in ("linear", "retention", "gla")}


@pytest.mark.parametrize("platform,impl", [("cuda", "pallas_gpu"), ("tpu", "pallas_tpu")])
def test_paper_config_lowers_to_the_kernels(platform, impl):
    """The paper-scale config (vocabulary 8,192, T = 256, short convolution) lowers its linear kinds to the Pallas
    kernels for an accelerator, from this host."""
    out = mqar_recall.attention_impl(paper_config(), platform)
    assert out["linear_attention_impl"] == {k: [impl] for k in ("linear", "retention", "gla")}


def test_softmax_grid_errors_name_the_key():
    config = get_config()
    with config.unlocked():
        config.recall.softmax_axes = "data.vocab_size=32,8"     # 8 tokens hold no 10 distinct pairs
    with pytest.raises(ConfigError, match=r"config.recall.softmax_axes: grid point .*data.vocab_size"):
        mqar_recall.check(config)
    with config.unlocked():
        config.recall.softmax_axes = "data.num_kv_pairs=4,8"                 # the mixture sets the counts
    with pytest.raises(ConfigError, match=r"config.recall.softmax_axes=.*data.kv_pairs_mix"):
        mqar_recall.check(config)


def test_eos_summary_of_adam_records():
    nan = float("nan")
    recs = [{"step": 0, "sharpness": 5.0, "preconditioned_sharpness": nan, "sharpness_ratio": nan,
             "eos_threshold": 380.0, "train_loss": 3.0}]
    recs += [{"step": s, "sharpness": 5.0 + s, "preconditioned_sharpness": 100.0 + s, "eos_threshold": 380.0,
              "sharpness_ratio": (100.0 + s) / 380.0, "train_loss": 3.0 - s / 100} for s in (25, 50, 75, 100)]
    out = eos_run_summary(recs)
    # the curvature Adam's threshold applies to, from the first update on (step 0's NaN is not a measurement)
    assert out["compared"] == "preconditioned_sharpness" and out["num_measurements"] == 4
    assert out["final_sharpness"] == 200.0 and out["last_quarter_sharpness"] == 187.5
    assert math.isclose(out["final_ratio"], 200 / 380, rel_tol=1e-4) and out["sharpening_rate"] is not None
