"""Associative recall (MQAR) against state size per attention kind (after Arora et al., "Zoology", 2023).

    python -m experiments.mqar_recall --workdir runs/mqar
    python -m experiments.mqar_recall --config=experiments/configs/mqar_recall_paper.py --workdir runs/mqar_paper

Trains the Transformer LM on MQAR over attention kind × width/heads × lr (seeds and lr vmapped in each group), on a
mixture of pair counts (data.kv_pairs_mix, as Zoology: one model sees every count, so no count gets more
labelled queries per step than another), and reports recall at each count: the share of queries answered right
on fresh sequences of that count, by the final parameters, at each point's best lr (Zoology's choice). The linear
kinds (linear | retention | gla) are the sweep's grid (config.sweep.axes); softmax has its own
(config.recall.softmax_axes), since its state does not depend on width the same way. State size per layer:
d_k·d_v per head × heads = d_model²/heads for the linear kinds, which run through kernels.linear_attention (impl
"auto": XLA on CPU, Pallas on GPU/TPU; the run prints and records which); softmax keeps every key and value, so
its "state" is the KV cache 2·T·d_model, drawn apart; a short convolution of K taps (model.conv_size) adds the
last K-1 steps of q, k and v, 3·(K-1)·d_model, to both.

Writes config.json, metrics.jsonl (training on the mixture), summary.json ("recall": a row per kind × d_model ×
heads × num_kv_pairs at its best lr, mean/std over seeds; "recall_by_lr": every lr; "claims": softmax >= 0.95 at
every count, linear kinds falling with pairs and not falling with state; "kernels"; "bag_of_values": the
generator's token-id baseline), recall.png (recall vs state size, a line per kind, a panel per num_kv_pairs),
loss_curves.png, loss_bands.png, and prints the table and the claims. Measurements: docs/lm.md.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import cli
from jaxlab.config import ConfigError
from jaxlab.data import mqar
from jaxlab.experiment import run_grid, write_grid_outputs
from jaxlab.grid import parse_axes
from jaxlab.kernels.linear_attention import IMPLS, KINDS as LINEAR
from jaxlab.models import TransformerLM, get_model
from jaxlab.sweep.plan import plan
from jaxlab.plots import plt, save
from jaxlab.stats import markdown_table

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Associative recall (MQAR) against state size per attention kind (after Zoology, 2023)"
CPU_TIME = "10.6 min wall on 2 cores at load 4.5–7.6 (5.6 min CPU; 7.4 min at load ~5)"

KINDS = ("softmax", "linear", "retention", "gla")
GROUP = ("model.attention", "model.d_model", "model.num_heads")  # a recall row, with the pair count
LR = "optim.lr"


def state_size(kind: str, d_model: int, num_heads: int, seq_len: int, conv_size: int = 0) -> int:
    """Numbers a layer carries from one token to the next: d_k·d_v per head × heads for linear kinds (the
    normaliser z of "linear" not counted); the KV cache 2·T·d_model for softmax; plus, with a short convolution
    of K taps, the last K-1 steps of q, k and v, 3·(K-1)·d_model."""
    conv = 3 * (conv_size - 1) * d_model if conv_size else 0
    if kind == "softmax":
        return 2 * seq_len * d_model + conv
    head_dim = d_model // num_heads
    return num_heads * head_dim * head_dim + conv


def _coord(r, config, path: str):
    if path in r.coords:
        return r.coords[path]
    section, key = path.split(".")
    return config[section][key]


def pair_recall(results, config, max_floats: int = 2 ** 27) -> list[tuple]:
    """Recall of every run at every pair count of the data (data.kv_pairs_mix, or data.num_kv_pairs): the share
    of queries answered right, by the run's final parameters, on data.num_test fresh sequences of that count
    (generated apart from the training and test sets), vmapped over the runs of one model and evaluated in
    chunks of at most max_floats logits. -> [(run, num_kv_pairs, recall)], results' order, then the counts'."""
    d = config.data
    n = d.num_test or max(1, d.num_examples // 4)
    sets = {k: mqar.generate(np.random.default_rng(1000 + k), n, d.seq_len, d.vocab_size, k, d.kv_pool, d.queries)
            for k in mqar.pair_counts(d)}
    by_model: dict[str, list] = {}
    for r in results:
        by_model.setdefault(r.result.config.model.to_json(), []).append(r)
    recall = {}
    for runs in by_model.values():
        model = get_model(runs[0].result.config.model, SimpleNamespace(num_classes=d.vocab_size))

        def hits(params, x, y):
            pred = jnp.argmax(model.apply({"params": params}, x), axis=-1)
            return jnp.sum((pred == y) & (y >= 0))
        hits_per_run = jax.jit(jax.vmap(hits, in_axes=(0, None, None)))
        params = jax.tree.map(lambda *p: np.stack(p), *[r.result.state.params for r in runs])
        rows = max(1, max_floats // (len(runs) * d.seq_len * d.vocab_size))
        for k, (x, y) in sets.items():
            pad = -len(x) % rows if len(x) > rows else 0           # one shape for every chunk
            x, y = np.pad(x, ((0, pad), (0, 0))), np.pad(y, ((0, pad), (0, 0)), constant_values=-1)
            total = sum(np.asarray(hits_per_run(params, x[i:i + rows], y[i:i + rows]), np.int64)
                        for i in range(0, len(x), rows))
            for r, h in zip(runs, total):
                recall[id(r), k] = float(h) / float((y >= 0).sum())
    return [(r, k, recall[id(r), k]) for r in results for k in sets]


def recall_rows(evals: list[tuple], config) -> tuple[list[dict], list[dict]]:
    """evals: pair_recall's (run, num_kv_pairs, recall). -> (rows, by_lr). by_lr: one row per (kind, d_model,
    heads, num_kv_pairs, lr), recall mean/std/min over seeds. rows: per (kind, d_model, heads, num_kv_pairs), the
    lr of highest mean recall (Zoology's choice)."""
    groups: dict[tuple, list] = {}
    for r, kv, rec in evals:
        key = tuple(_coord(r, config, p) for p in GROUP) + (kv, _coord(r, config, LR))
        groups.setdefault(key, []).append((r, rec))
    by_lr = []
    for (kind, d, heads, kv, lr), runs in groups.items():
        r0 = runs[0][0]
        budget = {k: _coord(r0, config, f"train.{k}") for k in ("steps", "batch_size")}
        budget["conv_size"] = _coord(r0, config, "model.conv_size")
        rec = np.asarray([x for _, x in runs], np.float64)
        by_lr.append({"attention": kind, "d_model": d, "num_heads": heads, "num_kv_pairs": kv, "lr": lr, **budget,
                      "state_size": state_size(kind, d, heads, config.data.seq_len, budget["conv_size"]),
                      "state": ("KV cache 2·T·d" if kind == "softmax" else "d_k·d_v·heads")
                      + (" + conv 3·(K-1)·d" if budget["conv_size"] else ""),
                      "recall": round(float(rec.mean()), 4), "recall_std": round(float(rec.std()), 4),
                      "recall_min": round(float(rec.min()), 4), "seeds": len(runs),
                      "diverged": sum(bool(r.result.summary.get("diverged")) for r, _ in runs)})
    order = {k: i for i, k in enumerate(KINDS)}

    def sort_key(r):
        return r["num_kv_pairs"], order.get(r["attention"], 9), r["state_size"], r["d_model"], r["lr"]
    by_lr.sort(key=sort_key)
    best: dict[tuple, dict] = {}
    for r in by_lr:
        k = (r["attention"], r["d_model"], r["num_heads"], r["num_kv_pairs"])
        if k not in best or r["recall"] > best[k]["recall"]:
            best[k] = r
    return sorted(best.values(), key=sort_key), by_lr


def claims(rows: list[dict], floor: float = 0.95, slack: float = 0.02) -> dict:
    """The experiment's three claims, checked on its recall rows (one per kind × d_model × heads × pairs):
      - "softmax": softmax's recall >= floor at every pair count;
      - "falls_with_pairs": per linear kind, its mean recall over states at the most pairs is below that at the
        fewest;
      - "rises_with_state": per linear kind, at the most pairs, recall never falls by more than slack from a
        smaller state to a larger one.
    -> {claim: {"holds": bool, ...the numbers it was decided on}}."""
    most, fewest = max(r["num_kv_pairs"] for r in rows), min(r["num_kv_pairs"] for r in rows)
    soft = {r["num_kv_pairs"]: r["recall"] for r in rows if r["attention"] == "softmax"}
    out = {"softmax": {"holds": bool(soft) and min(soft.values()) >= floor, "recall": soft}}
    falls, rises = {}, {}
    for kind in (k for k in KINDS if k != "softmax" and any(r["attention"] == k for r in rows)):
        own = [r for r in rows if r["attention"] == kind]
        m = {kv: float(np.mean([r["recall"] for r in own if r["num_kv_pairs"] == kv])) for kv in (fewest, most)}
        falls[kind] = {"holds": m[most] < m[fewest], f"mean_at_{fewest}": round(m[fewest], 4),
                       f"mean_at_{most}": round(m[most], 4)}
        curve = [r["recall"] for r in sorted((r for r in own if r["num_kv_pairs"] == most),
                                             key=lambda r: (r["state_size"], r["d_model"]))]
        drop = max((a - b for i, a in enumerate(curve) for b in curve[i + 1:]), default=0.0)
        rises[kind] = {"holds": drop <= slack, f"recall_at_{most}_by_state": curve, "largest_drop": round(drop, 4)}
    out["falls_with_pairs"] = {"holds": all(v["holds"] for v in falls.values()), **falls}
    out["rises_with_state"] = {"holds": all(v["holds"] for v in rises.values()), "slack": slack, **rises}
    return out


def plot_recall(rows: list[dict], path: str, title: str = "", baselines: dict | None = None) -> str:
    """Recall vs state size (log2): a panel per num_kv_pairs, a line per kind (mean ± std over seeds, each point
    at its best lr); softmax dashed at its KV-cache size; dotted: 1/num_kv_pairs (a guess among the context's
    values); dash-dotted: baselines[kv], the token-id "bag of values" of the generator."""
    kvs = sorted({r["num_kv_pairs"] for r in rows})
    fig, axes = plt.subplots(1, len(kvs), figsize=(3.8 * len(kvs), 3.3), squeeze=False, sharey=True)
    kinds = [k for k in KINDS if any(r["attention"] == k for r in rows)]
    for ax, kv in zip(axes[0], kvs):
        for i, kind in enumerate(kinds):
            pts = sorted((r["state_size"], r["recall"], r["recall_std"], f"d{r['d_model']}h{r['num_heads']}")
                         for r in rows if r["num_kv_pairs"] == kv and r["attention"] == kind)
            if not pts:
                continue
            s, m, sd, tags = zip(*pts)
            budget = next(f"{r['steps']}×{r['batch_size']}" for r in rows if r["attention"] == kind)
            label = f"softmax (KV cache 2Td), {budget}" if kind == "softmax" else f"{kind}, {budget}"
            ax.errorbar(s, m, yerr=sd, color=f"C{i}", marker="o", ms=4, lw=1.3, capsize=2,
                        ls="--" if kind == "softmax" else "-", label=label)
            for si, mi, tag in zip(s, m, tags):
                ax.annotate(tag, (si, mi), fontsize=6, color=f"C{i}", xytext=(2, 3), textcoords="offset points")
        ax.axhline(1.0 / kv, color="grey", ls=":", lw=1.0, label="1/pairs: a context value at random")
        if baselines and kv in baselines:
            ax.axhline(baselines[kv], color="k", ls="-.", lw=0.8, label="bag of values by token id")
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
            ("heads", "num_heads"), ("state size", "state_size"), ("steps × batch", "budget"), ("best lr", "lr"),
            ("recall", "recall"), ("± std", "recall_std"), ("min", "recall_min"), ("seeds", "seeds")]
    return markdown_table([{**r, "budget": f"{r['steps']} × {r['batch_size']}"} for r in rows], cols)


def attention_impl(config, platform: str | None = None) -> dict:
    """Which linear_attention implementation the LM's linear kinds run: the named scopes
    ``linear_attention_<impl>`` found in the LM lowered for ``platform`` (default: this backend), one lowering of
    a 1-sequence forward pass per kind. -> {"backend": platform, "linear_attention_impl": {kind: [impl]}}."""
    platform = platform or jax.default_backend()
    out = {"backend": platform, "linear_attention_impl": {}}
    tokens = jax.ShapeDtypeStruct((1, config.data.seq_len), jnp.int32)
    for kind in (k for k in LINEAR if k in _kinds(config)):
        lm = TransformerLM(vocab_size=config.data.vocab_size, d_model=32, num_layers=1, num_heads=2, mlp_ratio=1,
                           attention=kind, max_len=config.data.seq_len, conv_size=config.model.conv_size)
        params = jax.eval_shape(lm.init, jax.random.PRNGKey(0), tokens)
        text = jax.jit(lm.apply).trace(params, tokens).lower(lowering_platforms=(platform,)).as_text(debug_info=True)
        out["linear_attention_impl"][kind] = sorted(i for i in IMPLS if f"linear_attention_{i}/" in text)
    return out


def _kinds(config) -> list[str]:
    kinds = []
    for axes in (config.sweep.axes, config.recall.softmax_axes):
        parsed = parse_axes(axes, config) if axes else {}
        kinds += list(parsed.get("model.attention", [config.model.attention] if axes else []))
    return kinds


def _softmax_config(config):
    """The softmax grid as a config of its own: recall.softmax_axes replaces sweep.axes."""
    c = copy.deepcopy(config)
    with c.unlocked():
        c.model.attention = "softmax"
        c.sweep.axes = config.recall.softmax_axes
    return c


def check(config):
    if config.data.name != "mqar" or config.model.name != "transformer":
        raise ConfigError(f"config.data.name={config.data.name!r}, config.model.name={config.model.name!r}: "
                          f"mqar_recall trains the transformer on mqar")
    for key in ("sweep.axes", "recall.softmax_axes"):
        axes = config[key.split(".")[0]][key.split(".")[1]]
        if config.data.kv_pairs_mix and "data.num_kv_pairs" in axes:
            raise ConfigError(f"config.{key}={axes!r}: data.num_kv_pairs does nothing while "
                              f"data.kv_pairs_mix={tuple(config.data.kv_pairs_mix)} sets the pair counts")
    if config.recall.softmax_axes:
        if "model.attention" in config.recall.softmax_axes:
            raise ConfigError(f"config.recall.softmax_axes={config.recall.softmax_axes!r}: is softmax's own "
                              f"grid; leave model.attention out of it")
        try:
            plan(_softmax_config(config))  # validates every grid point before any compute
        except ConfigError as e:
            why = str(e).replace("config.sweep.axes: ", "")  # plan() names the sweep's key; this grid is ours
            raise ConfigError(f"config.recall.softmax_axes: {why}") from e


def main(config, workdir):
    # Groups that differ only in their data (data.num_kv_pairs as a sweep axis) compile to the same program: a
    # compilation cache for this process makes every compilation after the first a cache hit.
    cache = None
    if not jax.config.jax_compilation_cache_dir:
        cache = tempfile.mkdtemp(prefix="jaxlab-mqar-cache-")
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    impl = attention_impl(config)
    print(f"[mqar_recall] backend {impl['backend']}; linear kinds run linear_attention impl "
          f"{impl.get('linear_attention_impl')}", file=sys.stderr)
    try:  # both grids append to the same metrics.jsonl
        results = list(run_grid(_softmax_config(config), workdir)) if config.recall.softmax_axes else []
        results += list(run_grid(config, workdir)) if config.sweep.axes else []
        evals = pair_recall(results, config)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
            jax.config.update("jax_compilation_cache_dir", None)
    rows, by_lr = recall_rows(evals, config)
    d = config.data
    kvs = sorted({r["num_kv_pairs"] for r in rows})
    baselines = {kv: mqar.bag_of_values_closed_form(kv, d.kv_pool) for kv in kvs}
    plot_recall(rows, os.path.join(workdir, "recall.png"), baselines={k: b["recall"] for k, b in baselines.items()},
                title=f"MQAR recall vs state size (T={d.seq_len}, vocab {d.vocab_size}, {d.kv_pool} pool, trained on "
                      f"{'/'.join(map(str, mqar.pair_counts(d)))} pairs, {config.model.num_layers} layers, best lr "
                      f"per point; legend: steps×batch)")
    verdict = claims(rows)
    extra = {"recall": rows, "recall_by_lr": by_lr, "claims": verdict, "kernels": impl,
             "bag_of_values": {str(k): b for k, b in baselines.items()}}
    write_grid_outputs(results, workdir, extra_summary=extra, keys=("train_loss", "test_accuracy"))
    print(format_table(rows))
    for name, c in verdict.items():
        numbers = json.dumps({k: v for k, v in c.items() if k != "holds"})
        print(f"{name}: {'holds' if c['holds'] else 'DOES NOT HOLD'} {numbers}")


if __name__ == "__main__":
    cli.main(main, __file__, check=check)
