"""Ahead-of-time compilation of the Pallas kernels by the real compilers (no device needed): Triton + ptxas for
sm_90 and sm_80, libtpu's Mosaic for v5e and v6e, over kernels.aot's matrix (forward and grad; bf16 and
float32; D 64 and 128; with and without the gate; T = 1000, not a chunk multiple; normalize; initial and
final state). Fails on any compile error, on any spill at bf16 D 64/128 on sm_90, and on more spill bytes
than tests/kernels/aot_spills.json records for any other kernel (regenerate it with
`python -m kernels.aot --baseline tests/kernels/aot_spills.json` after an intended change).

The compilers come from kernels/aot_env.sh (an ignored folder, installed on first use); the test skips only
when the package index cannot be reached.

By default the matrix compiles for one GPU arch and one TPU generation, sm_90 and v5e: the kernels' code is the
same for the other targets. `pytest -m slow tests/kernels/test_aot.py` runs the same checks
for sm_80 and v6e (half the suite's AOT time, about 5 CPU-minutes).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASELINE = os.path.join(ROOT, "tests", "kernels", "aot_spills.json")


TARGETS = {"default": ("sm_90", "v5e"), "other": ("sm_80", "v6e")}


def _aot_env() -> dict:
    """Every platform visible, and no persistent cache (compile-only TPU clients cannot serialise executables)."""
    env = dict(os.environ, JAX_PLATFORMS="")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    return env


def _install():
    env = dict(os.environ, PYTHON=sys.executable)
    inst = subprocess.run(["bash", os.path.join(ROOT, "kernels", "aot_env.sh")], env=env, capture_output=True,
                          text=True, timeout=900)
    if inst.returncode == 3:
        pytest.skip(f"AOT compilers not installable, package index unreachable: {inst.stderr.strip()[-300:]}")
    assert inst.returncode == 0, inst.stderr[-2000:]


@pytest.fixture(scope="module", params=[pytest.param("default"), pytest.param("other", marks=pytest.mark.slow)])
def report(request, tmp_path_factory):
    """(rows of kernels.aot --json for one GPU arch and one TPU generation, the finished process)."""
    _install()
    arch, gen = TARGETS[request.param]
    out = tmp_path_factory.mktemp("aot") / "aot.json"
    run = subprocess.run([sys.executable, "-m", "kernels.aot", "--gpu", arch, "--tpu", gen, "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1200, env=_aot_env())
    assert out.exists(), run.stderr[-3000:]
    return json.loads(out.read_text()), run


def test_everything_compiles(report):
    data, run = report
    errors = [r for r in data["gpu"] + data["tpu"] if "error" in r]
    assert not errors and run.returncode == 0, (errors, run.stderr[-2000:])
    kernels = {(r["case"], r["kernel"]) for r in data["gpu"]}
    assert {k for _, k in kernels} == {"fwd", "dq", "dk", "dv"} and len({r["generation"] for r in data["tpu"]}) == 1
    for gen in {r["generation"] for r in data["tpu"]}:  # every TPU kernel of every case, its scoped VMEM read back
        tpu = {(r["case"], r["kernel"]) for r in data["tpu"] if r["generation"] == gen and r["scoped_vmem"]}
        assert tpu == kernels, gen


def _sm90(report):
    if not any(r["arch"] == "sm_90" for r in _compiled(report)):
        pytest.skip("an sm_90 check; this report has no sm_90 rows")


def test_no_spills_bf16_sm90(report):
    _sm90(report)
    spilling = [r for r in _compiled(report) if r["arch"] == "sm_90" and r["case"].startswith("bf16")
                and r["spill_stores"] + r["spill_loads"] > 0]
    assert not spilling, spilling


def test_no_spill_regression(report):
    with open(BASELINE) as f:
        baseline = json.load(f)
    rows = _compiled(report)
    unknown = [_key(r) for r in rows if _key(r) not in baseline]
    assert not unknown, f"not in {BASELINE} (regenerate it): {unknown}"
    worse = [(_key(r), r["spill_stores"], baseline[_key(r)]) for r in rows if r["spill_stores"] > baseline[_key(r)]]
    assert not worse, f"(kernel, spill bytes now, baseline): {worse}"


def _compiled(report):
    return [r for r in report[0]["gpu"] if "error" not in r]   # errors fail test_everything_compiles


def _key(row) -> str:  # as kernels.aot.spill_key (not imported here: it puts libtpu on sys.path)
    return f"{row['case']}|{row['kernel']}|{row['arch']}"


def test_flop_count_matches_closed_form(report):
    """The Triton-IR FLOP count of the plain forward equals the chunked algorithm's matmul work per chunk,
    2 (C^2 Dk + C^2 BV + 2 C Dk BV), times chunks (T = 1000 -> 16 of 64) and programs (Dv / BV x B x H),
    plus its few vector operations (under 1%)."""
    C, N, B, H, D = 64, 16, 8, 16, 128
    row = next(r for r in _compiled(report) if r["case"] == "bf16 D128 plain" and r["kernel"] == "fwd")
    BV = D * B * H // row["programs"]
    dots = 2 * (C * C * D + C * C * BV + 2 * C * D * BV) * N * row["programs"] / 1e6
    assert 0 <= row["mflop"] - dots < 0.01 * dots, (row["mflop"], dots)


def test_normalize_costs_no_more_work(report):
    """normalize=True loads per-chunk key sums (key_sums) instead of appending a ones column to v (which
    padded Dv 128 to 256 and doubled the grid): on sm_90 every normalized kernel's compiled FLOPs, plus the XLA cost
    analysis of the key sums it loads (key_sums: counted against the forward and dk), and its registers per
    thread stay within 1.1x of the same kernel without normalize."""
    _sm90(report)
    rows = report[0]["normalize"]
    assert {(r["case"], r["kernel"]) for r in rows} >= {(c, k) for c in ("bf16 D64 norm", "bf16 D128 norm",
                                                                       "bf16 D64 gate+norm+state",
                                                                       "bf16 D128 gate+norm+state")
                                                       for k in ("fwd", "dq", "dk", "dv")}
    assert all(r["xla_mflop"] > 0 for r in rows if r["kernel"] in ("fwd", "dk")), rows
    worse = [r for r in rows if r["mflop_ratio"] > 1.1 or r["regs_ratio"] > 1.1]
    assert not worse, worse


def test_programs_per_sm_fill_the_sm(report):
    """per_sm is the most programs an SM holds: that many fit its 64K registers (allocated per warp in units of
    256), its shared memory (228 KB on sm_90, 164 KB on sm_80, 1 KB reserved per program) and 64 warps, and one
    more would not. The limits are NVIDIA's documented ones, restated here: this guards the arithmetic
    (rounding, which limit binds), not the constants."""
    smem = {"sm_90": 233472, "sm_80": 167936}

    def fits(r, n):
        per_warp = -(-r["regs"] * 32 // 256) * 256
        return (n * r["num_warps"] * per_warp <= 65536 and n * (r["smem"] + 1024) <= smem[r["arch"]]
                and n * r["num_warps"] <= 64 and n <= 32)

    rows = _compiled(report)
    assert rows
    for r in rows:
        assert r["per_sm"] >= 1 and fits(r, r["per_sm"]) and not fits(r, r["per_sm"] + 1), r
