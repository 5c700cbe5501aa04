"""Adam at the edge of stability: preconditioned sharpness against 38/η. Config: experiments/configs/adam_eos.py.

    python -m experiments.adam_eos --workdir runs/adam_eos

Tracks λ1(P⁻¹H) with P = √v̂ + ε, v̂ = ν/(1 − β2ᵗ) (the denominator of the update just taken; nothing is recorded
before the first update), against (2 + 2β1)/((1 − β1)η). The claim (Cohen et al., 2022): it rises to that
threshold and hovers there — checked per learning rate as the last-quarter mean ratio within 10% of 1, written to
summary.json["claim"]. Outputs as eos_weight_decay's (eos_sharpness.png draws the preconditioned sharpness).
"""
from __future__ import annotations

from jaxlab import cli
from jaxlab.sweep import sweep
from experiments.eos_weight_decay import write_eos_outputs

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Adam at the edge of stability: preconditioned sharpness against 38/η"
CPU_TIME = "~1 min"


def hovers(rows, tolerance: float = 0.1) -> dict:
    """Per lr: the last-quarter mean of λ1(P⁻¹H)/threshold, the plateau test's verdict over the last half, and
    whether it hovers: the mean within ``tolerance`` of 1 and the curve shown flat (an "undecided" test fails)."""
    out = {}
    for r in rows:
        ratio = r.get("last_quarter_ratio")
        near = ratio is not None and abs(ratio - 1.0) <= tolerance
        out[f"lr={r['lr']:g} seed={r['seed']}"] = {
            "last_quarter_ratio": ratio, "near_threshold": near, "plateau_verdict": r.get("plateau_verdict"),
            "plateau_change": r.get("plateau_change"), "steps_to_reach": r.get("steps_to_reach"),
            "hovers": bool(near and r.get("plateaued"))}
    return out


def main(config, workdir):
    results = sweep(config, workdir=workdir)
    write_eos_outputs(results, workdir, claim=hovers,
                      title=f"{config.model.name}, Adam: preconditioned sharpness vs (2+2β1)/((1−β1)η)")


if __name__ == "__main__":
    cli.main(main, __file__)
