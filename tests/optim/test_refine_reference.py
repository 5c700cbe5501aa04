"""Refinement (Defazio et al., 2023, arXiv:2310.07831) against the reference formula written out in numpy here:
facebookresearch/adaptive_scheduling README's median filter (odd window, reflect padding at the end) and
find_closed_form_schedule's η_t = w_t Σ_{s>t} w_s (normalised to peak 1 here), w = ĝ⁻² (SGD) or ĝ⁻¹ (Adam, ℓ1)."""
import jax
import numpy as np
import pytest
from scipy.ndimage import median_filter

from jaxlab.optim import default_optim_config, make_schedule
from jaxlab.optim.refine import refine


def reference(gnorms, sigma, power):
    n = len(gnorms)
    filter_width = 2 * (int(sigma * n) // 2) + 1
    pad = 2 * filter_width
    g = median_filter(np.pad(gnorms, (0, pad), mode="reflect"), size=filter_width, mode="nearest")[:-pad]
    weights = g ** -power
    sched = np.zeros(n)
    for t in range(n - 1):
        sched[t] = weights[t] * np.sum(weights[t + 1:])
    return sched / sched.max()


@pytest.mark.parametrize("norm,power", [("l2", 2.0), ("l1", 1.0)])
@pytest.mark.parametrize("width", [0.0, 0.05, 0.1, 0.3])
def test_refine_matches_reference(norm, power, width):
    rng = np.random.default_rng(0)
    n = 200
    # Falling then rising norms with spikes: exercises the warmup, the late decay and the filter's end padding.
    g = (3.0 * np.exp(-np.arange(n) / 30) + 1.0 + 0.5 * (np.arange(n) / n) ** 2) * np.exp(0.2 * rng.normal(size=n))
    g[[20, 120, 198]] *= 10
    np.testing.assert_allclose(refine(g, width, norm), reference(g, width, power), rtol=1e-12, atol=1e-15)


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match="norm"):
        refine(np.ones(5), 0.1, "linf")


def test_refined_schedule_replaces_the_warmup(tmp_path):
    """warmup_steps is ignored: the multiplier is the refinement over all of [0, T] (no drop at step w)."""
    steps = 100
    rng = np.random.default_rng(1)
    g = 2.0 + np.exp(-np.arange(steps) / 10) + 0.1 * rng.random(steps)
    path = str(tmp_path / "g.npy")
    np.save(path, g)
    c = default_optim_config()
    c.lr, c.schedule.name, c.schedule.refine_path, c.schedule.refine_width = 1.0, "refined", path, 0.05
    c.schedule.warmup_steps = 75
    sched = jax.jit(jax.vmap(make_schedule(c, steps)))
    got = np.asarray(sched(np.arange(steps, dtype=np.float32)))
    np.testing.assert_allclose(got, reference(g, 0.05, 2.0), rtol=2e-5, atol=1e-6)
    assert np.max(np.abs(np.diff(got[60:90]))) < 0.05          # smooth through the old warmup boundary
