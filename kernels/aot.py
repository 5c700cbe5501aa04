"""Ahead-of-time compile checks of the Pallas kernels for real GPU and TPU compilers, on a CPU machine.

    kernels/aot_env.sh                    # once: triton + libtpu into .aot/site (ignored by git)
    python -m kernels.aot                 # the full matrix: sm_90, sm_80, v5e, v6e
    python -m kernels.aot --gpu sm_90 --tpu none --json out.json

GPU: linear_attention is lowered for cuda; each Triton custom call's IR (MLIR bytecode in its backend
config) is printed as text with JAX's Triton dialect, compiled by the `triton` package to PTX, and the PTX
assembled by triton's bundled ptxas with -v, which reports registers, spill bytes and shared memory.
TPU: the same function is compiled by libtpu for a compile-only topology (jax.experimental.topologies); a
Mosaic compile error fails the run, and each kernel's scoped VMEM comes from the compiled HLO's
`used_scoped_memory_configs`. Neither needs the device. Each matrix entry compiles the forward and the
backward (value_and_grad: fwd, dq, dk, dv kernels).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

SITE = os.environ.get("JAXLAB_AOT_SITE", os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))),
                                                       ".aot", "site"))
if os.path.isdir(SITE) and SITE not in sys.path:  # before jax: libtpu is found on sys.path at backend init
    sys.path.append(SITE)
# Compile-only use: concurrent runs (pytest-xdist, two checkouts) must not fight over /tmp/libtpu_lockfile.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from .linear_attention import linear_attention  # noqa: E402

KERNELS = ("fwd", "dq", "dk", "dv")
GPU_ARCHS = ("sm_90", "sm_80")
TPU_TOPOLOGIES = {"v5e": "v5e:2x2", "v6e": "v6e:2x2", "v4": "v4:2x2x1", "v5p": "v5p:2x2x1"}


@dataclasses.dataclass(frozen=True)
class Case:
    """One matrix entry: [B, T, H, D] inputs of `dtype`; T = 1000 is not a multiple of any chunk (only
    lowered and compiled, never run, so the sizes cost nothing)."""

    dtype: str = "bfloat16"
    D: int = 128
    decay: bool = True            # a [B, T, H] gate with its gradient (the gated backward)
    normalize: bool = False
    state: bool = False           # initial_state in, final state out
    B: int = 8                    # B x H = 128 programs: no automatic narrowing of the feature blocks
    T: int = 1000
    H: int = 16

    @property
    def name(self):
        flags = [f for f, on in (("gate", self.decay), ("norm", self.normalize), ("state", self.state)) if on]
        return f"{'bf16' if self.dtype == 'bfloat16' else 'f32'} D{self.D} " + ("+".join(flags) or "plain")


def matrix(quick: bool = False):
    """dtype x D x decay, plus state (with the gate, with and without normalize) and normalize without gate
    or state, at bf16 D 64 and 128. quick: bf16 only."""
    dtypes = ("bfloat16",) if quick else ("bfloat16", "float32")
    cases = [Case(dt, D, decay) for dt in dtypes for D in (64, 128) for decay in (False, True)]
    cases += [Case("bfloat16", D, True, normalize=norm, state=True) for D in (64, 128) for norm in (False, True)]
    cases += [Case("bfloat16", D, False, normalize=True) for D in (64, 128)]
    return cases


def _fn_and_args(case: Case, impl: str, sharding=None):
    """value_and_grad of the summed outputs wrt every input, and abstract arguments."""
    dt = jnp.dtype(case.dtype)
    B, T, H, D = case.B, case.T, case.H, case.D
    sd = _sds_factory(sharding)
    args = [sd((B, T, H, D), dt)] * 3
    args.append(sd((B, T, H), jnp.float32) if case.decay else None)
    args.append(sd((B, H, D, D + int(case.normalize)), jnp.float32) if case.state else None)

    def loss(q, k, v, g, s0):
        out = linear_attention(q, k, v, log_decay=g, normalize=case.normalize, initial_state=s0,
                               return_final_state=case.state, impl=impl, interpret=False)
        o, s = out if case.state else (out, None)
        return jnp.sum(o.astype(jnp.float32)) + (0.0 if s is None else jnp.sum(s))

    return jax.value_and_grad(loss, argnums=tuple(i for i, a in enumerate(args) if a is not None)), args


def _sds_factory(sharding):
    def sd(shape, dtype):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
    return sd


# ---------------------------------------------------------------- GPU (Triton -> PTX -> ptxas)

def triton_kernels(case: Case, grids: dict | None = None):
    """-> {kernel: (ttir text, num_warps, num_stages)} from the cuda lowering; grids, if given, receives
    {kernel: number of programs}."""
    from jax._src.interpreters import mlir
    from jax._src.lib import triton as jax_triton
    from jax._src.lib.mlir import ir

    fn, args = _fn_and_args(case, "pallas_gpu")
    module = jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).compiler_ir("stablehlo")
    found = {}

    def walk(op):
        for region in op.regions:
            for block in region.blocks:
                for o in block.operations:
                    op_name, attrs = o.operation.name, o.attributes
                    if op_name == "stablehlo.custom_call" and "triton" in str(attrs["call_target_name"]):
                        cfg = ir.DictAttr(o.attributes["mhlo.backend_config"])
                        name = ir.StringAttr(cfg["name"]).value.removeprefix("linear_attention_")
                        if grids is not None:
                            grids[name] = _prod("x".join(str(ir.IntegerAttr(cfg[f"grid_{a}"]).value)
                                                         for a in "xyz"))
                        found[name] = (ir.StringAttr(cfg["ir"]).value_bytes,
                                       ir.IntegerAttr(cfg["num_warps"]).value, ir.IntegerAttr(cfg["num_stages"]).value)
                    walk(o.operation)

    walk(module.operation)
    ctx = mlir.make_ir_context()
    jax_triton.dialect.register_dialect(ctx)
    with ctx:  # bytecode -> text: triton's parser reads text written by a different MLIR build
        return {n: (str(ir.Module.parse(bc)), w, s) for n, (bc, w, s) in found.items()}


_DOT = re.compile(r"tt\.dot .*: tensor<(\d+)x(\d+)x\w+> \* tensor<\d+x(\d+)x\w+>")
_VEC = re.compile(r"= (?:arith\.(?:addf|subf|mulf|divf|maxnumf|minnumf)|math\.exp2) .*: tensor<([\dx]+)xf\d+>$")
_RED = re.compile(r"^\}\) : \(tensor<([\dx]+)xf\d+>\) -> ")   # a reduction's closing line: its input type


def chunk_flops(ttir: str) -> dict:
    """Floating-point work of one trip through a kernel's chunk loop (its outermost scf.for), read from
    the Triton IR: matmul FLOPs (2 M K N per tt.dot) and vector FLOPs (one per element of every float
    add/sub/mul/div/max/exp2 and per input element of every reduction). Times the chunk count and the
    grid size, this is the kernel's work; the few operations outside the loop are left out."""
    dot = vec = 0
    depth = None
    for line in ttir.splitlines():
        if depth is None:
            if "scf.for" in line:
                depth = line.count("{") - line.count("}")
            continue
        m = _DOT.search(line)
        if m:
            M, K, N = map(int, m.groups())
            dot += 2 * M * K * N
        else:
            m = _VEC.search(line.strip()) or _RED.search(line.strip())
            if m:
                vec += _prod(m.group(1))
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            break
    return {"dot_flops": dot, "vec_flops": vec}


def _prod(dims: str) -> int:
    n = 1
    for d in dims.split("x"):
        n *= int(d)
    return n


_PTXAS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads.*?"
                    r"Used (\d+) registers", re.S)
_cache: dict = {}


def compile_triton(ttir: str, arch: str, num_warps: int, num_stages: int) -> dict:
    """-> {regs, spill_stores, spill_loads, stack, smem} or {error}; cached by IR text."""
    key = (hashlib.sha1(ttir.encode()).hexdigest(), arch, num_warps, num_stages)
    if key in _cache:
        return _cache[key]
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")   # what JAX's own Triton pipeline does
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import get_ptxas

    cc = int(arch.removeprefix("sm_"))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ttir")
        with open(src, "w") as f:
            f.write(ttir)
        try:
            k = triton.compile(src, target=GPUTarget("cuda", cc, 32),
                               options=dict(num_warps=num_warps, num_stages=num_stages))
        except Exception as e:  # noqa: BLE001 (a compile error is a result, reported per kernel)
            res = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"}
            _cache[key] = res
            return res
        ptx = os.path.join(tmp, "kernel.ptx")
        with open(ptx, "w") as f:
            f.write(k.asm["ptx"])
        gpu_name = f"sm_{cc}a" if cc >= 90 else f"sm_{cc}"
        out = subprocess.run([get_ptxas(cc).path, "-v", f"--gpu-name={gpu_name}", ptx, "-o",
                              os.path.join(tmp, "k.cubin")], capture_output=True, text=True)
    m = _PTXAS.search(out.stdout + out.stderr)
    if out.returncode or not m:
        res = {"error": f"ptxas: {(out.stderr or out.stdout).strip()[-300:]}"}
    else:
        stack, st, ld, regs = map(int, m.groups())
        res = {"regs": regs, "spill_stores": st, "spill_loads": ld, "stack": stack, "smem": k.metadata.shared}
    _cache[key] = res
    return res


# Per-SM limits (CUDA occupancy calculator): registers are allocated per warp in units of 256; shared memory
# per SM and per-block reservation in bytes.
_SM = {"sm_90": dict(smem=233472), "sm_80": dict(smem=167936)}


def programs_per_sm(row) -> int:
    """Programs (CTAs) of this kernel that fit on one SM at once, by registers, shared memory and warps: what
    a register count costs (latency hiding needs several programs per SM)."""
    warps, regs_per_warp = row["num_warps"], -(-row["regs"] * 32 // 256) * 256
    by_regs = (65536 // regs_per_warp) // warps
    by_smem = _SM[row["arch"]]["smem"] // (row["smem"] + 1024)
    return min(by_regs, by_smem, 64 // warps, 32)


def gpu_report(cases, archs, workers: int | None = None):
    """Lower every case, then compile the distinct kernels in parallel processes (spawned: no fork of JAX)."""
    import concurrent.futures
    import multiprocessing

    rows, jobs = [], {}
    for case in cases:
        grids = {}
        for name, (ttir, warps, stages) in sorted(triton_kernels(case, grids).items()):
            f = chunk_flops(ttir)
            mflop = (f["dot_flops"] + f["vec_flops"]) * grids[name] * -(-case.T // 64) / 1e6  # chunk 64
            for arch in archs:
                key = (ttir, arch, warps, stages)
                jobs.setdefault(key, None)
                rows.append(({"case": case.name, "kernel": name, "arch": arch, "num_warps": warps,
                              "num_stages": stages, "programs": grids[name], "mflop": round(mflop),
                              "vec_share": round(f["vec_flops"] / (f["dot_flops"] + f["vec_flops"]), 4)}, key))
    keys = list(jobs)
    workers = workers or max(1, min(len(keys), os.cpu_count() or 1))
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for key, res in zip(keys, pool.map(compile_triton, *zip(*keys))):
            jobs[key] = res
    out = [{**row, **jobs[key]} for row, key in rows]
    return [{**r, "per_sm": programs_per_sm(r)} if "error" not in r else r for r in out]


# ---------------------------------------------------------------- TPU (Mosaic via libtpu, compile-only topology)

_SCOPED = re.compile(r'"used_scoped_memory_configs":\[\{"memory_space":"1","offset":"\d+","size":"(\d+)"')


def tpu_report(cases, generations):
    import numpy as np
    from jax.experimental import topologies
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    rows = []
    for gen in generations:
        topo = topologies.get_topology_desc(TPU_TOPOLOGIES[gen], "tpu")
        sharding = NamedSharding(Mesh(np.array(topo.devices[:1]), ("x",)), PartitionSpec())
        for case in cases:
            fn, args = _fn_and_args(case, "pallas_tpu", sharding)
            row = {"case": case.name, "generation": gen}
            try:
                text = jax.jit(fn).trace(*args).lower().compile().as_text()
            except Exception as e:  # noqa: BLE001
                rows.append({**row, "kernel": "*", "error": f"{type(e).__name__}: {str(e).strip()[:300]}"})
                continue
            for line in text.splitlines():
                m = re.search(r"linear_attention_(fwd|dq|dk|dv)\b", line)
                if "tpu_custom_call" in line and m:
                    vmem = _SCOPED.search(line)
                    rows.append({**row, "kernel": m.group(1), "scoped_vmem": int(vmem.group(1)) if vmem else None})
    return rows


# ---------------------------------------------------------------- CLI

def xla_normaliser_mflop(case: Case, chunk: int = 64) -> dict:
    """The normaliser's work outside the kernels (key_sums, O(T D) per head), by XLA's cost analysis of
    its compiled computation: {'fwd': the key sums entering each chunk, 'dk': their gradients} in MFLOP."""
    from .linear_attention import key_sums
    dt, f32 = jnp.dtype(case.dtype), jnp.float32
    B, H, D, T = case.B, case.H, case.D, -(-case.T // chunk) * chunk
    x, rows, vec = (jax.ShapeDtypeStruct(s, t) for s, t in (((B, T, H, D), dt), ((B, H, T), f32), ((B, H, 1, D), f32)))
    b, z = (rows if case.decay else None), (vec if case.state else None)
    fns = {"fwd": (lambda k, b, z: key_sums.entering(k, b, z, chunk, dt), (x, b, z)),
           "dk": (lambda q, d, b, z: key_sums.leaving_grads(q, d, b, z, chunk), (x, rows, b, z))}
    out = {}
    for kernel, (fn, args) in fns.items():
        cost = jax.jit(fn, backend="cpu").lower(*args).compile().cost_analysis()
        out[kernel] = (cost[0] if isinstance(cost, list) else cost)["flops"] / 1e6
    return out


def normalize_costs(gpu_rows, arch: str = "sm_90", xla_mflop: dict | None = None):
    """Per kernel of every normalize case: its work (mflop: matmul + vector FLOPs x programs x chunks, plus
    xla_mflop[case][kernel], the normaliser's share computed in XLA) and registers per thread over those of
    the same case without normalize, and both kernels' programs per SM."""
    by = {(r["case"], r["kernel"]): r for r in gpu_rows if r["arch"] == arch and "error" not in r}
    out = []
    for (case, kernel), r in sorted(by.items()):
        if "norm" not in case:
            continue
        flags = [f for f in case.split(" ")[2].split("+") if f != "norm"]
        plain = by.get((" ".join(case.split(" ")[:2] + ["+".join(flags) or "plain"]), kernel))
        if plain:
            xla = (xla_mflop or {}).get(case, {}).get(kernel, 0.0)
            out.append({"case": case, "kernel": kernel, "xla_mflop": round(xla, 1),
                        "mflop_ratio": round((r["mflop"] + xla) / plain["mflop"], 3),
                        "regs": r["regs"], "regs_plain": plain["regs"],
                        "regs_ratio": round(r["regs"] / plain["regs"], 3),
                        "per_sm": r["per_sm"], "per_sm_plain": plain["per_sm"]})
    return out


def aot_available() -> dict:
    """Which compilers can be loaded: {'triton': bool, 'libtpu': bool}."""
    import importlib.util
    return {m: importlib.util.find_spec(m) is not None for m in ("triton", "libtpu")}


def spill_key(row) -> str:
    return f"{row['case']}|{row['kernel']}|{row['arch']}"


def _table(rows, cols):
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", default=",".join(GPU_ARCHS), help="comma-separated sm_XX, or 'none'")
    ap.add_argument("--tpu", default="v5e,v6e", help=f"comma-separated among {list(TPU_TOPOLOGIES)}, or 'none'")
    ap.add_argument("--quick", action="store_true", help="bf16 cases only")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--baseline", help="write {case|kernel|arch: spill bytes} here (the regression bound)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    have = aot_available()
    archs = [a for a in args.gpu.split(",") if a and a != "none"]
    gens = [g for g in args.tpu.split(",") if g and g != "none"]
    missing = [m for m, want in (("triton", archs), ("libtpu", gens)) if want and not have[m]]
    if missing:
        sys.exit(f"kernels.aot: {missing} not importable; run kernels/aot_env.sh (installs into {SITE})")
    cases = matrix(args.quick)
    out = {"jax": jax.__version__, "gpu": [], "tpu": []}
    if archs:
        import triton
        out["triton"] = triton.__version__
        out["gpu"] = gpu_report(cases, archs)
        print(f"## GPU (Triton {triton.__version__}, ptxas -v; default config)\n")
        print(_table(out["gpu"], ["case", "kernel", "arch", "regs", "spill_stores", "spill_loads", "smem",
                                  "num_warps", "num_stages", "per_sm", "programs", "mflop", "error"]))
        xla = {c.name: xla_normaliser_mflop(c) for c in cases if c.normalize}
        out["normalize"] = normalize_costs(out["gpu"], xla_mflop=xla)
        print("\n## normalize=True against normalize=False (same dtype, D, gate; sm_90; xla_mflop: key_sums)\n")
        print(_table(out["normalize"], ["case", "kernel", "xla_mflop", "mflop_ratio", "regs", "regs_plain",
                                         "regs_ratio", "per_sm", "per_sm_plain"]))
    if gens:
        out["tpu"] = tpu_report(cases, gens)
        print("\n## TPU (libtpu, compile-only topology; scoped VMEM bytes per kernel)\n")
        print(_table(out["tpu"], ["case", "kernel", "generation", "scoped_vmem", "error"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if args.baseline:
        with open(args.baseline, "w") as f:
            json.dump({spill_key(r): r["spill_stores"] for r in out["gpu"] if "error" not in r}, f, indent=1,
                      sort_keys=True)
    bad = [r for r in out["gpu"] + out["tpu"] if "error" in r]
    if bad:
        sys.exit(f"kernels.aot: {len(bad)} compile errors")


if __name__ == "__main__":
    main()
