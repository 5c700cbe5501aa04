"""fla's Triton kernels timed for kernels.bench (run in its own process: it imports torch and takes the GPU).

    python -m kernels.bench_fla --shapes 8,4096,16,128 --variants linear,retention,gla

Prints one JSON line {"fla_<variant>_<fwd|fwdbwd>_B{B}_T{T}_H{H}_D{D}": median ms}. Needs torch, triton and
fla-core (pip install fla-core einops). Same problems as kernels.bench: [B, T, H, D] inputs, causal, scale
Dk^-0.5; linear = chunk_linear_attn(normalize=False); retention = chunk_simple_gla with a fixed per-head
g_gamma (no gradient for it); gla = chunk_simple_gla with a [B, T, H] gate g that gets a gradient.
"""
from __future__ import annotations

import argparse
import json
import math


def timings(B, T, H, D, variants, dtype_name):
    import torch
    from fla.ops.linear_attn import chunk_linear_attn
    from fla.ops.simple_gla import chunk_simple_gla
    from triton.testing import do_bench

    dtype = getattr(torch, dtype_name)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
    do = torch.randn_like(v)
    gamma = torch.tensor([math.log1p(-2.0 ** (-5 - h)) for h in range(H)], device="cuda")
    gate = (torch.nn.functional.logsigmoid(torch.randn(B, T, H, device="cuda") + 3) / 16).requires_grad_()
    ops = {
        "linear": (lambda: chunk_linear_attn(q, k, v, normalize=False)[0], [q, k, v]),
        "retention": (lambda: chunk_simple_gla(q, k, v, g_gamma=gamma)[0], [q, k, v]),
        "gla": (lambda: chunk_simple_gla(q, k, v, g=gate)[0], [q, k, v, gate]),
    }
    out, tag = {}, f"B{B}_T{T}_H{H}_D{D}"
    for name in variants:
        f, leaves = ops[name]
        out[f"fla_{name}_fwd_{tag}"] = do_bench(f, warmup=25, rep=100, return_mode="median")
        out[f"fla_{name}_fwdbwd_{tag}"] = do_bench(lambda: f().backward(do), warmup=25, rep=100,
                                                   return_mode="median", grad_to_none=leaves)
    return out


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="+", default=["8,4096,16,128"])
    ap.add_argument("--variants", default="linear,retention,gla")
    ap.add_argument("--dtype", default="bfloat16")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    res = {}
    for s in args.shapes:
        res.update(timings(*map(int, s.split(",")), args.variants.split(","), args.dtype))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
