"""`python -m kernels.bench` runs end to end on CPU (tiny shapes; Pallas interpreted) and prints both tables."""
import re

import jax.numpy as jnp
import pytest

from jaxlab.kernels import bench


def test_bench_prints_tables(capsys):
    bench.main(["--shapes", "1,32,1,16", "--variants", "gla", "--samples", "1", "--fla", "off"])
    out = capsys.readouterr().out
    assert "## forward" in out and "## forward + backward" in out
    rows = [line for line in out.splitlines() if line.startswith("| B1 T32 H1 D16")]
    assert len(rows) == 2 and not any("nan" in r for r in rows)


def test_tune_runs(capsys):
    bench.tune((1, 32, 1, 16), jnp.float32, "retention", samples=1, grid=[(16, 16, 4, 2)])
    assert "chunk=16 block=16" in capsys.readouterr().out


@pytest.mark.parametrize("variant", bench.VARIANTS)
def test_fwdbwd_keeps_forward_kernel(variant):
    """The compiled fwd+bwd benchmark function still runs the forward kernel next to the three backward
    ones (CPU: Pallas interpreted; the kernels' names survive in the compiled HLO's op metadata). Timing
    only the VJP's backward lets XLA delete the forward, whose output nothing would use."""
    q, k, v, do, gate = bench.problem(1, 32, 1, 16, jnp.float32, variant)
    _, fwdbwd = bench._impl_fns(variant, 1, impl="pallas", chunk_size=16)
    text = fwdbwd.lower(q, k, v, gate, do).compile().as_text()
    found = set(re.findall(r"linear_attention_(fwd|dq|dk|dv)", text))
    assert found == {"fwd", "dq", "dk", "dv"}, found
