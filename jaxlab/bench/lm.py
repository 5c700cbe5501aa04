"""LM training throughput per attention kind and implementation: tokens/s and step time, ratios to softmax.

    python -m jaxlab.bench.lm                              # CPU: d_model 64, 2 layers, T = 128, 256, 512, xla only
    python -m jaxlab.bench.lm --impls=pallas,xla           # add the Pallas kernels (interpreted on CPU: very slow)
    python -m jaxlab.bench.lm --large                      # GPU/TPU: d_model 512 and 1024, T = 512 ... 8192

One training step = forward, backward and an Adam update of the Transformer LM (jaxlab.models.TransformerLM) on
random tokens, jitted; the batch holds ``--tokens`` tokens (B = tokens // T sequences), so rows of one size
compare the same work per step. Each entry is the fastest of ``--repeats`` compiled steps (compilation excluded;
on a shared machine other processes only add time), the rows of one size and T timed round-robin, and every ratio
is to softmax attention at the same size and T, measured in the same process. Rows: softmax (jax.nn.dot_product_attention: cuDNN flash attention on GPU when
it fits, XLA otherwise) and, for each linear kind (linear | retention | gla), each implementation asked for:
``xla`` (the chunked jnp form) and ``pallas`` (the kernels of jaxlab.kernels.linear_attention for the backend).
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

from jaxlab.bench import timed
from jaxlab.losses import cross_entropy
from jaxlab.models import ATTENTION, TransformerLM, param_count, register_attention

LINEAR_KINDS = ("linear", "retention", "gla")


def _mixer(kind: str, impl: str) -> str:
    """The registry name of ``kind`` with its implementation fixed to ``impl`` (linear kinds only), registered
    on first use as a subclass with that default: the LM picks mixers by name only."""
    if kind == "softmax":
        return kind
    name = f"{kind}[{impl}]"
    if name not in ATTENTION:
        base = ATTENTION[kind]
        register_attention(name)(type(name.replace("[", "_").rstrip("]"), (base,),
                                      {"__annotations__": {"impl": str}, "impl": impl}))
    return name


def make_step(model, lr: float = 1e-3):
    """One Adam step on (x, y): -> jitted (params, opt_state, x, y) -> (params, opt_state, loss)."""
    tx = optax.adam(lr)

    def step(params, opt_state, x, y):
        loss, g = jax.value_and_grad(lambda p: cross_entropy(model.apply({"params": p}, x), y))(params)
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return tx, jax.jit(step, donate_argnums=(0, 1))


def build(kind: str, impl: str, d_model: int, layers: int, heads: int, seq_len: int, tokens: int,
          vocab: int, dtype=jnp.float32):
    """-> (row without timings, once(): one blocking training step) for one (kind, impl, size, T)."""
    B = max(1, tokens // seq_len)
    model = TransformerLM(vocab_size=vocab, d_model=d_model, num_layers=layers, num_heads=heads, mlp_ratio=4,
                          attention=_mixer(kind, impl), max_len=seq_len, activation="gelu", dtype=dtype)
    kx, kp = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.randint(kx, (B, seq_len), 0, vocab)
    y = jnp.roll(x, -1, axis=1)  # next-token labels (random tokens: only the cost matters)
    params = model.init(kp, x[:1])["params"]
    tx, step = make_step(model)
    state = [params, tx.init(params)]

    def once():
        state[0], state[1], loss = step(state[0], state[1], x, y)
        jax.block_until_ready(loss)

    row = {"kind": kind, "impl": "softmax" if kind == "softmax" else impl, "d_model": d_model, "T": seq_len,
           "B": B, "params": param_count(params)}
    return row, once


def time_rows(fns, repeats: int) -> list[float]:
    """Fastest of ``repeats`` calls of each fn, compiled first and then timed round-robin (one call of each per
    round), so that load from other processes, which comes and goes, falls on every row alike."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], timed(fn, 1, warmup=False))
    return best


def run(d_models, seq_lens, kinds, impls, layers: int, heads: int, tokens: int, vocab: int, repeats: int,
        print_fn=print) -> list[dict]:
    """Every (size, T, kind, impl) row, with ``vs_softmax`` = tokens/s ÷ softmax's at the same size and T."""
    rows = []
    print_fn(f"| {'d_model':>7} | {'T':>5} | {'B':>4} | {'kind':<9} | {'impl':<7} | {'step ms':>9} | "
             f"{'tokens/s':>10} | {'vs softmax':>10} |")
    print_fn(f"|{'-' * 9}|{'-' * 7}|{'-' * 6}|{'-' * 11}|{'-' * 9}|{'-' * 11}|{'-' * 12}|{'-' * 12}|")
    for d in d_models:
        for T in seq_lens:
            cell = [build(kind, impl, d, layers, heads, T, tokens, vocab)
                    for kind in ["softmax"] + [k for k in kinds if k != "softmax"]
                    for impl in (["softmax"] if kind == "softmax" else impls)]
            times = time_rows([fn for _, fn in cell], repeats)
            for (r, _), t in zip(cell, times):
                r.update(step_s=t, tokens_per_s=r["B"] * T / t, vs_softmax=times[0] / t)
                rows.append(r)
                print_fn(f"| {d:7d} | {T:5d} | {r['B']:4d} | {r['kind']:<9} | {r['impl']:<7} | "
                         f"{1e3 * t:9.2f} | {r['tokens_per_s']:10.0f} | {r['vs_softmax']:9.2f}x |")
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--large", action="store_true",
                   help="accelerator sizes: d_model 512,1024 (8 layers), T 512..8192, 65,536 tokens per step")
    p.add_argument("--d-models", default=None, help="comma-separated widths (default 64; --large: 512,1024)")
    p.add_argument("--seq-lens", default=None, help="default 128,256,512; --large: 512,1024,2048,4096,8192")
    p.add_argument("--kinds", default="softmax,linear,retention,gla")
    p.add_argument("--impls", default=None, help="linear kinds' implementations: xla | pallas "
                   "(default: xla on CPU, where Pallas runs interpreted; pallas,xla elsewhere)")
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--tokens", type=int, default=None, help="tokens per step (default 2048; --large: 65536)")
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    return p


def main(argv=None):
    p = parser()
    a = p.parse_args(argv)
    on_cpu = jax.default_backend() == "cpu"
    big = a.large
    d_models = [int(s) for s in (a.d_models or ("512,1024" if big else "64")).split(",")]
    seq_lens = [int(s) for s in (a.seq_lens or ("512,1024,2048,4096,8192" if big else "128,256,512")).split(",")]
    impls = (a.impls or ("xla" if on_cpu else "pallas,xla")).split(",")
    for i in impls:
        if i not in ("xla", "pallas"):
            p.error(f"--impls: {i!r} is not xla or pallas")
    layers = a.layers or (8 if big else 2)
    heads = a.heads or (8 if big else 4)
    tokens = a.tokens or (65536 if big else 2048)
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), jax {jax.__version__}; {layers} layers, {heads} heads, "
          f"{tokens} tokens per step, vocab {a.vocab}, Adam; fastest of {a.repeats}"
          + ("; Pallas interpreted on CPU" if on_cpu and "pallas" in impls else ""))
    return run(d_models, seq_lens, a.kinds.split(","), impls, layers, heads, tokens, a.vocab, a.repeats)


if __name__ == "__main__":
    main()
