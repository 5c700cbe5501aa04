"""python -m jaxlab.bench.lm runs on CPU with tiny settings and reports a row per (kind, impl), softmax = 1x."""
import numpy as np

from jaxlab.bench import lm
from jaxlab.models import ATTENTION


def test_bench_lm_executes_on_cpu(capsys):
    rows = lm.main(["--d-models=16", "--seq-lens=32", "--layers=1", "--heads=2", "--tokens=64", "--vocab=32",
                    "--repeats=1", "--kinds=softmax,gla"])
    out = capsys.readouterr().out
    assert [(r["kind"], r["impl"]) for r in rows] == [("softmax", "softmax"), ("gla", "xla")]
    assert rows[0]["vs_softmax"] == 1.0 and rows[0]["B"] == 2
    assert all(np.isfinite(r["tokens_per_s"]) and r["tokens_per_s"] > 0 for r in rows)
    assert "| gla" in out and "tokens/s" in out
    assert ATTENTION["gla[xla]"].impl == "xla"   # the bench's registry entry fixes the implementation
