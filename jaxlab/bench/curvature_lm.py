"""Memory of a Transformer LM's Hessian-vector product at vocabulary size: plain vs chunked over tokens.

    python -m jaxlab.bench.curvature --lm                  # d_model 128, 2 layers, 4 × 512 tokens, V = 32,768

Compiles (does not run) ``make_hvp`` of the token-mean cross-entropy and
``jaxlab.curvature.lm_hvp.make_token_chunked_hvp`` at several token chunks, and prints XLA's temporary-buffer
size for each (``compiled.memory_analysis()``), next to the size of one [B, T, V] float32 array. Then times one
HVP of each at a smaller vocabulary, where both fit, as ratios to the plain one.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.bench import timed
from jaxlab.curvature import make_hvp
from jaxlab.curvature.lm_hvp import make_token_chunked_hvp
from jaxlab.losses import cross_entropy
from jaxlab.models import TransformerLM


def transformer_split(model: TransformerLM):
    """(features_fn, readout_fn) of jaxlab's TransformerLM from its module and parameter names: features = the
    final norm's output ("norm_out", captured), readout = h Eᵀ with E = params["embed"]["embedding"] (tied)."""
    def features(params, x):
        _, state = model.apply({"params": params}, x, mutable=["intermediates"],
                               capture_intermediates=lambda mdl, _: mdl.name == "norm_out")
        return state["intermediates"]["norm_out"]["__call__"][0]

    def readout(params, h):
        E = params["embed"]["embedding"]
        dtype = jnp.promote_types(h.dtype, jnp.float32)
        return h.astype(dtype) @ E.T.astype(dtype)

    return features, readout


def _setup(vocab: int, d_model: int, layers: int, batch: int, seq: int):
    model = TransformerLM(vocab_size=vocab, d_model=d_model, num_layers=layers, num_heads=4)
    kx, ky, kp, kv = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.randint(kx, (batch, seq), 0, vocab)
    y = jax.random.randint(ky, (batch, seq), 0, vocab)
    params = jax.eval_shape(lambda: model.init(kp, x[:1])["params"])
    params = jax.tree.map(lambda s: 0.02 * jax.random.normal(kv, s.shape, s.dtype), params)
    return model, params, (x, y)


def hvp_fns(model, chunks):
    loss_fn = lambda p, b: cross_entropy(model.apply({"params": p}, b[0]), b[1])  # noqa: E731
    feats, readout = transformer_split(model)
    fns = {"plain": jax.jit(lambda p, b, v: make_hvp(loss_fn, p, b)(v))}
    for c in chunks:
        fns[f"chunked {c}"] = jax.jit(lambda p, b, v, c=c: make_token_chunked_hvp(feats, readout, p, b, c)(v))
    return fns


def memory_rows(vocab=32768, d_model=128, layers=2, batch=4, seq=512, chunks=(128, 32)):
    """[(label, temporary bytes)] of the compiled HVPs, and the bytes of one [B, T, V] float32 array."""
    model, params, b = _setup(vocab, d_model, layers, batch, seq)
    rows = []
    for label, fn in hvp_fns(model, chunks).items():
        mem = fn.lower(params, b, params).compile().memory_analysis()
        rows.append((label, int(mem.temp_size_in_bytes)))
    return rows, batch * seq * vocab * 4


def time_rows(vocab=4096, d_model=64, layers=2, batch=4, seq=256, chunks=(64,), repeats=5):
    """[(label, seconds)] of one HVP each, where the plain one fits."""
    model, params, b = _setup(vocab, d_model, layers, batch, seq)
    fns = hvp_fns(model, chunks)
    return [(label, timed(lambda fn=fn: jax.block_until_ready(fn(params, b, params)), repeats))
            for label, fn in fns.items()]


def main(args):
    rows, logits = memory_rows()
    print(f"\nTransformer LM HVP memory (d_model 128, 2 layers, 4 × 512 tokens, V = 32,768; one [B, T, V] float32 "
          f"array = {logits / 2**20:.0f} MiB), XLA temporaries of the compiled HVP:")
    print(f"| {'HVP':<14} | {'MiB':>8} | {'× [B,T,V]':>9} |")
    print(f"|{'-' * 16}|{'-' * 10}|{'-' * 11}|")
    for label, b in rows:
        print(f"| {label:<14} | {b / 2**20:8.0f} | {b / logits:9.2f} |")
    t = time_rows(repeats=args.repeats)
    print("\nOne HVP at V = 4,096 (d_model 64, 4 × 256 tokens), median of repeats, ratio to plain: "
          + ", ".join(f"{label} {1e3 * s:.0f} ms ({s / t[0][1]:.2f}×)" for label, s in t))
