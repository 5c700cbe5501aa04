"""Linear-attention benchmark: Pallas vs chunked XLA vs softmax attention (and fla, when importable).

    python -m kernels.bench                          # accelerator: B8 T4096 H16 D128 and B2 T16384 H16 D128, bf16
    python -m kernels.bench --small                  # quick small shapes (the default on CPU)
    python -m kernels.bench --shapes 8,4096,16,128 --variants linear,retention,gla --fla on
    python -m kernels.bench --tune --shapes 8,4096,16,128    # sweep Pallas tile configs (GPU)

Prints, per shape and variant, the median milliseconds of the forward and of forward+backward for `pallas`,
`xla`, softmax attention (`jax.nn.dot_product_attention`, cuDNN on GPU) and fla (timed first, in a
subprocess, by kernels.bench_fla), their ratios to Pallas, and the HBM floor: the bytes of q, k, v, o (and
for forward+backward also do, dq, dk, dv) over the copy bandwidth measured in the same run, with the
fraction of that bandwidth Pallas achieves (floor / time). Forward+backward returns the output and the
gradients: the custom VJP saves only its inputs, so a timed function that dropped the output would let
XLA delete the forward kernel and time the backward alone (tests/kernels/test_kernels_bench.py checks). Each time is
the median over samples of back-to-back calls (dispatch amortised), after compilation and warm-up.
Variants: linear (no decay), retention (fixed per-head decay, no decay gradient, as fla's g_gamma),
gla (a [B, T, H] gate with its gradient). On CPU the Pallas kernels run interpreted: those timings say
nothing about the kernels, the run only checks that everything executes.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

from .linear_attention import linear_attention
from .linear_attention import pallas as pallas_lib
from .linear_attention.common import platform
from .linear_attention.layer import retention_log_decays

FULL_SHAPES = ["8,4096,16,128", "2,16384,16,128"]
SMALL_SHAPES = ["1,256,2,64", "2,512,2,64"]
VARIANTS = ("linear", "retention", "gla")


def time_ms(fn, *args, samples: int = 7, sample_s: float = 0.02) -> float:
    """Median per-call milliseconds over `samples` runs of back-to-back calls lasting ~sample_s each."""
    jax.block_until_ready(fn(*args))                     # compile
    jax.block_until_ready(fn(*args))                     # warm up
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    inner = max(1, int(sample_s / max(time.perf_counter() - t, 1e-6)))
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(inner):
            out = fn(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t) / inner)
    return 1e3 * statistics.median(times)


def copy_bandwidth(nbytes: int = 1 << 30) -> float:
    """Bytes per second read + written by an elementwise pass over a large array."""
    x = jnp.zeros((nbytes // 4,), jnp.float32)
    ms = time_ms(jax.jit(lambda x: x + 1.0), x)
    return 2 * nbytes / (ms * 1e-3)


def problem(B, T, H, D, dtype, variant, key=0):
    ks = jax.random.split(jax.random.PRNGKey(key), 5)
    q, k, v, do = (jax.random.normal(kk, (B, T, H, D), dtype) for kk in ks[:4])
    gate = None
    if variant == "gla":
        gate = jax.nn.log_sigmoid(jax.random.normal(ks[4], (B, T, H), jnp.float32) + 3.0) / 16
    return q, k, v, do, gate


def _impl_fns(variant, H, **kw):
    """(fwd(q, k, v, gate), fwd+bwd(q, k, v, gate, do)) for linear_attention with keyword args kw."""
    fixed = retention_log_decays(H) if variant == "retention" else None   # a constant: no decay gradient

    def fwd(q, k, v, gate):
        return linear_attention(q, k, v, log_decay=gate if gate is not None else fixed, **kw)

    def fwdbwd(q, k, v, gate, do):
        out, vjp = jax.vjp(fwd, q, k, v, gate)
        return out, vjp(do)                 # returning out keeps the forward kernel alive

    return jax.jit(fwd), jax.jit(fwdbwd)


def _softmax_fns(impl):
    def fwd(q, k, v):
        return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=impl)

    def fwdbwd(q, k, v, do):
        out, vjp = jax.vjp(fwd, q, k, v)
        return out, vjp(do)

    return jax.jit(fwd), jax.jit(fwdbwd)


def _try(fn, *args, **kw):
    try:
        return time_ms(fn, *args, **kw)
    except Exception as e:  # noqa: BLE001 (a failing column must not lose the others)
        print(f"  ! {getattr(fn, '__name__', fn)} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}",
              file=sys.stderr)
        return float("nan")


def measure(shape, dtype, variants, chunk_size, samples, fla=None, softmax=True):
    B, T, H, D = shape
    rows = []
    # cuDNN's flash attention on GPU (XLA's if cuDNN is missing); XLA's elsewhere.
    sm_impls = (["cudnn", None] if platform() == "gpu" else [None]) if softmax else []
    for variant in variants:
        q, k, v, do, gate = problem(B, T, H, D, dtype, variant)
        row = {"shape": f"B{B} T{T} H{H} D{D}", "variant": variant}
        for impl in ("pallas", "xla"):
            f, fb = _impl_fns(variant, H, impl=impl, chunk_size=chunk_size)
            row[f"{impl}_fwd"] = _try(f, q, k, v, gate, samples=samples)
            row[f"{impl}_fwdbwd"] = _try(fb, q, k, v, gate, do, samples=samples)
        for impl in sm_impls:
            f, fb = _softmax_fns(impl)
            row["softmax_fwd"] = _try(f, q, k, v, samples=samples)
            row["softmax_fwdbwd"] = _try(fb, q, k, v, do, samples=samples)
            if row["softmax_fwd"] == row["softmax_fwd"]:  # not NaN: this implementation ran
                break
        if fla:
            tag = f"B{B}_T{T}_H{H}_D{D}"
            row["fla_fwd"] = fla.get(f"fla_{variant}_fwd_{tag}", float("nan"))
            row["fla_fwdbwd"] = fla.get(f"fla_{variant}_fwdbwd_{tag}", float("nan"))
        rows.append(row)
    return rows


def fla_timings(shapes, variants, dtype):
    """fla's Triton kernels timed in a subprocess (torch and JAX would otherwise share the GPU's memory)."""
    cmd = [sys.executable, "-m", "kernels.bench_fla", "--variants", ",".join(variants), "--dtype", dtype,
           "--shapes", *[",".join(map(str, s)) for s in shapes]]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        print(f"fla timing failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        return {}
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows, phase, floors):
    impls = [i for i in ("pallas", "xla", "softmax", "fla") if f"{i}_{phase}" in rows[0]]
    head = ["shape", "variant", *[f"{i} ms" for i in impls], "HBM floor ms",
            *[f"pallas/{i}" for i in impls[1:]], "pallas/floor", "pallas % of copy bw"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        p = r[f"pallas_{phase}"]
        floor = floors[r["shape"]][phase]
        cells = [r["shape"], r["variant"], *[f"{r[f'{i}_{phase}']:.3f}" for i in impls], f"{floor:.3f}",
                 *[f"{p / r[f'{i}_{phase}']:.2f}" for i in impls[1:]], f"{p / floor:.1f}",
                 f"{100 * floor / p:.0f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# (chunk_size, block, num_warps, num_stages) swept by --tune; block is both block_k and block_v.
TUNE_GRID = [(c, b, w, s) for c in (32, 64, 128) for b in (32, 64, 128) for w in (4, 8) for s in (1, 2, 3)]


def tune(shape, dtype, variant, samples, grid=TUNE_GRID):
    """Sweep the Pallas tile parameters for one shape; print the fastest configs (fwd and fwd+bwd)."""
    B, T, H, D = shape
    q, k, v, do, gate = problem(B, T, H, D, dtype, variant)
    g = None if variant == "linear" else (gate if gate is not None
                                          else jnp.broadcast_to(retention_log_decays(H), (B, T, H)))
    base = pallas_lib.default_config(platform() if platform() in ("gpu", "tpu") else "gpu", 64,
                                     interpret=platform() == "cpu")
    results = []
    for C, blk, warps, stages in grid:
        cfg = dataclasses.replace(base, chunk_size=C, block_k=blk, block_v=blk, num_warps=warps, num_stages=stages,
                                  auto_split=False)

        def fwd(q, k, v, g, cfg=cfg):
            return pallas_lib.causal_core(q * D ** -0.5, k, v, g, None, cfg, False)[0]

        def fwdbwd(q, k, v, g, do, fwd=fwd):
            out, vjp = jax.vjp(fwd, q, k, v, g)
            return out, vjp(do)

        results.append((cfg, _try(jax.jit(fwd), q, k, v, g, samples=samples),
                        _try(jax.jit(fwdbwd), q, k, v, g, do, samples=samples)))
    for i, name in ((1, "forward"), (2, "forward+backward")):
        best = sorted((r for r in results if r[i] == r[i]), key=lambda r: r[i])[:5]
        print(f"\nfastest {name}, {variant}, B{B} T{T} H{H} D{D}:")
        for cfg, f, fb in best:
            print(f"  {f:8.3f} / {fb:8.3f} ms  chunk={cfg.chunk_size} block={cfg.block_k} "
                  f"warps={cfg.num_warps} stages={cfg.num_stages}")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", help="B,T,H,D (default: the full set on GPU/TPU, --small on CPU)")
    ap.add_argument("--small", action="store_true", help="small shapes, quick")
    ap.add_argument("--variants", default="linear,retention,gla")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--chunk-size", type=int, default=64)
    ap.add_argument("--samples", type=int, default=7)
    ap.add_argument("--fla", choices=("auto", "on", "off"), default="auto",
                    help="time fla's kernels too (auto: when torch, triton and fla import and a GPU is used)")
    ap.add_argument("--no-softmax", action="store_true")
    ap.add_argument("--tune", action="store_true", help="sweep Pallas tile configs instead of the table")
    ap.add_argument("--json", help="also write the rows to this file")
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)

    on_cpu = platform() == "cpu"
    shape_strs = args.shapes or (SMALL_SHAPES if (args.small or on_cpu) else FULL_SHAPES)
    shapes = [tuple(int(x) for x in s.split(",")) for s in shape_strs]
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or any(len(s) != 4 for s in shapes):
        ap.error(f"variants must be among {VARIANTS} and shapes B,T,H,D; got {bad or shape_strs}")
    dtype = jnp.dtype(args.dtype)

    want_fla = args.fla == "on" or (args.fla == "auto" and platform() == "gpu" and all(
        importlib.util.find_spec(m) for m in ("torch", "triton", "fla")))
    fla = fla_timings(shapes, variants, args.dtype) if want_fla else None   # before JAX takes the GPU

    dev = jax.devices()[0]
    print(f"# device: {dev.device_kind} ({dev.platform}), jax {jax.__version__}, dtype {dtype.name}, "
          f"chunk {args.chunk_size}" + (" — Pallas interpreted on CPU: timings not meaningful" if on_cpu else ""))
    if args.tune:
        for s in shapes:
            for v in variants:
                tune(s, dtype, v, args.samples)
        return

    bw = copy_bandwidth(1 << 30 if not on_cpu else 1 << 26)
    print(f"# measured copy bandwidth: {bw / 1e9:.0f} GB/s (read + write)")
    rows, floors = [], {}
    for s in shapes:
        B, T, H, D = s
        act = B * T * H * D * dtype.itemsize
        floors[f"B{B} T{T} H{H} D{D}"] = {"fwd": 4 * act / bw * 1e3, "fwdbwd": 11 * act / bw * 1e3}
        rows += measure(s, dtype, variants, args.chunk_size, args.samples, fla, softmax=not args.no_softmax)
    for phase, name in (("fwd", "forward"), ("fwdbwd", "forward + backward")):
        print(f"\n## {name} (median ms; ratios < 1: Pallas faster)\n")
        print(table(rows, phase, floors))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": dev.device_kind, "rows": rows, "floors": floors, "bandwidth": bw}, f, indent=1)


if __name__ == "__main__":
    main()
