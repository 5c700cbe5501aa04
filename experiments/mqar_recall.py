"""Associative recall (MQAR) against state size per attention kind (after Arora et al., "Zoology", 2023).

    python -m experiments.mqar_recall --workdir runs/mqar
    python -m experiments.mqar_recall --config=experiments/configs/mqar_recall_paper.py --workdir runs/mqar_paper

Trains the Transformer LM on MQAR over attention kind × d_model × num_kv_pairs (seeds vmapped in each group) and
reports recall: accuracy at the query positions only (the labels are -1 elsewhere), on the held-out sequences.
State size per layer: d_k·d_v per head × heads = d_model²/heads for the linear kinds (linear | retention | gla);
softmax attention keeps every key and value, so its "state" is the KV cache 2·T·d_model, drawn apart.

Writes config.json, metrics.jsonl, summary.json ("recall": a row per kind × d_model × num_kv_pairs, mean/std over
seeds), recall.png (recall vs state size, a line per kind, a panel per num_kv_pairs), loss_curves.png,
loss_bands.png, and prints the table.

The CPU default does not reproduce the paper (docs/lm.md): in its 600 steps no kind learns the key-value binding,
and recall stays at the plateau of picking any value of the context, for softmax as for the linear kinds.

CPU time: ~5 min on 2 shared cores (3.9 min CPU; 16 groups of 2 seeds)
"""
from __future__ import annotations

import os
import shutil
import tempfile

import jax
import numpy as np

from jaxlab import cli
from jaxlab.config import ConfigError
from jaxlab.experiment import run_grid, write_grid_outputs
from jaxlab.plots import plt, save
from jaxlab.stats import markdown_table

KINDS = ("softmax", "linear", "retention", "gla")
AXES = ("model.attention", "model.d_model", "data.num_kv_pairs")


def state_size(kind: str, d_model: int, num_heads: int, seq_len: int) -> int:
    """Numbers a layer carries from one token to the next: d_k·d_v per head × heads for linear kinds (the
    normaliser z of "linear" not counted); the KV cache 2·T·d_model for softmax."""
    if kind == "softmax":
        return 2 * seq_len * d_model
    head_dim = d_model // num_heads
    return num_heads * head_dim * head_dim


def _coord(r, config, path: str):
    if path in r.coords:
        return r.coords[path]
    section, key = path.split(".")
    return config[section][key]


def recall_rows(results, config) -> list[dict]:
    """One row per (kind, d_model, num_kv_pairs): recall (final test accuracy at query positions) mean/std/min
    over seeds, the best recall seen during training (mean over seeds), and the state size."""
    groups: dict[tuple, list] = {}
    for r in results:
        key = tuple(_coord(r, config, p) for p in AXES)
        groups.setdefault(key, []).append(r.result)
    rows = []
    for (kind, d, kv), res in groups.items():
        final = np.asarray([x.summary.get("final_test_accuracy", np.nan) for x in res], np.float64)
        best = np.asarray([max((rec["test_accuracy"] for rec in x.records if "test_accuracy" in rec),
                               default=np.nan) for x in res], np.float64)
        rows.append({"attention": kind, "d_model": d, "num_kv_pairs": kv,
                     "state_size": state_size(kind, d, config.model.num_heads, config.data.seq_len),
                     "state": "KV cache 2·T·d" if kind == "softmax" else "d_k·d_v·heads",
                     "recall": round(float(final.mean()), 4), "recall_std": round(float(final.std()), 4),
                     "recall_min": round(float(final.min()), 4), "best_recall": round(float(best.mean()), 4),
                     "seeds": len(res), "diverged": sum(bool(x.summary.get("diverged")) for x in res)})
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(rows, key=lambda r: (r["num_kv_pairs"], order.get(r["attention"], 9), r["d_model"]))


def plot_recall(rows: list[dict], path: str, title: str = "") -> str:
    """Recall vs state size (log2): a panel per num_kv_pairs, a line per kind (mean ± std over seeds); softmax
    dashed at its KV-cache size; dotted: 1/num_kv_pairs, what picking any value of the context scores."""
    kvs = sorted({r["num_kv_pairs"] for r in rows})
    fig, axes = plt.subplots(1, len(kvs), figsize=(3.8 * len(kvs), 3.3), squeeze=False, sharey=True)
    kinds = [k for k in KINDS if any(r["attention"] == k for r in rows)]
    for ax, kv in zip(axes[0], kvs):
        for i, kind in enumerate(kinds):
            pts = sorted((r["state_size"], r["recall"], r["recall_std"], r["d_model"]) for r in rows
                         if r["num_kv_pairs"] == kv and r["attention"] == kind)
            if not pts:
                continue
            s, m, sd, d = (np.asarray(v) for v in zip(*pts))
            label = "softmax (KV cache 2Td)" if kind == "softmax" else kind
            ax.errorbar(s, m, yerr=sd, color=f"C{i}", marker="o", ms=4, lw=1.3, capsize=2,
                        ls="--" if kind == "softmax" else "-", label=label)
            for si, mi, di in zip(s, m, d):
                ax.annotate(f"d={di}", (si, mi), fontsize=6, color=f"C{i}", xytext=(2, 3), textcoords="offset points")
        ax.axhline(1.0 / kv, color="grey", ls=":", lw=1.0, label="1/pairs: a context value at random")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"{kv} key-value pairs", fontsize=10)
        ax.set_xlabel("state size per layer")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("recall (query accuracy, test)")
    axes[0][-1].legend(fontsize=7)
    return save(fig, path, title)


def format_table(rows: list[dict]) -> str:
    cols = [("kv pairs", "num_kv_pairs"), ("attention", "attention"), ("d_model", "d_model"),
            ("state size", "state_size"), ("state", "state"), ("recall", "recall"), ("± std", "recall_std"),
            ("min", "recall_min"), ("best during training", "best_recall"), ("seeds", "seeds")]
    return markdown_table(rows, cols)


def check(config):
    if config.data.name != "mqar" or config.model.name != "transformer":
        raise ConfigError(f"config.data.name={config.data.name!r}, config.model.name={config.model.name!r}: "
                          f"mqar_recall trains the transformer on mqar")


def main(config, workdir):
    # The num_kv_pairs groups of one (kind, width) compile to the same program (same shapes; only the data
    # differ): a compilation cache for this process makes every compilation after the first a cache hit.
    cache = None
    if not jax.config.jax_compilation_cache_dir:
        cache = tempfile.mkdtemp(prefix="jaxlab-mqar-cache-")
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    try:
        results = run_grid(config, workdir)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    rows = recall_rows(results, config)
    plot_recall(rows, os.path.join(workdir, "recall.png"),
                title=f"MQAR recall vs state size (T={config.data.seq_len}, vocab {config.data.vocab_size}, "
                      f"{config.model.num_layers} layers, {config.model.num_heads} head(s), {config.train.steps} steps)")
    write_grid_outputs(results, workdir, extra_summary={"recall": rows}, keys=("train_loss", "test_accuracy"))
    print(format_table(rows))


if __name__ == "__main__":
    cli.main(main, __file__, check=check)
