"""`python -m kernels.bench` runs end to end on CPU (tiny shapes; Pallas interpreted) and prints both tables."""
import jax.numpy as jnp

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
