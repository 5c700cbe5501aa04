"""Schedules against closed forms written here independently (numpy, step by step), at boundaries and inside.

Conventions under test (jaxlab/optim/schedules.py): warmup lr·(t+1)/w for t < w; decays over [w, T] with
p = (t − w)/(T − w), reaching end_factor at t = T.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.optim import default_optim_config, make_schedule

T, LR = 100, 0.5


def config(name, **schedule):
    c = default_optim_config()
    c.lr = LR
    c.schedule.name = name
    for k, v in schedule.items():
        c.schedule[k] = v
    return c


def lrs(c, steps, total=T, hp=None):
    return np.asarray(jax.jit(make_schedule(c, total, hp))(jnp.asarray(steps, jnp.int32)), np.float64)


def warm(t, w):
    return (t + 1) / w


def ref(name, t, w=0, e=0.0, **kw):
    """Closed forms, one step at a time."""
    if t < w:
        return warm(t, w)
    p = min(1.0, (t - w) / (T - w))
    shape = {
        "constant": lambda: 1.0,
        "linear": lambda: 1 - p,
        "cosine": lambda: 0.5 * (1 + math.cos(math.pi * p)),
        "one_minus_sqrt": lambda: 1 - math.sqrt(p),
        "rex": lambda: (1 - p) / (1 - p / 2),
    }
    if name == "exponential":
        return e ** p
    if name == "inv_sqrt":
        tau = kw.get("timescale") or w
        return math.sqrt(tau / (tau + t - w))
    if name == "constant":
        return 1.0
    return e + (1 - e) * shape[name]()


STEPS = [0, 1, 4, 9, 10, 11, 37, 55, 98, 99, 100, 120]


@pytest.mark.parametrize("name", ["constant", "linear", "cosine", "one_minus_sqrt", "rex", "exponential", "inv_sqrt"])
@pytest.mark.parametrize("w,e", [(0, 0.0), (10, 0.1)])
def test_warmup_decay_schedules_match_closed_form(name, w, e):
    if name == "exponential" and e == 0:
        e = 0.01
    if name == "inv_sqrt" and w == 0:
        kw = {"timescale": 20.0}
    else:
        kw = {}
    got = lrs(config(name, warmup_steps=w, end_factor=e, **kw), STEPS)
    want = [LR * ref(name, t, w, e, **kw) for t in STEPS]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


def test_hand_values_at_landmarks():
    # Values worked out by hand, not from a formula shared with the code.
    assert lrs(config("constant", warmup_steps=4), [0, 1, 3, 4, 99]).tolist() == [0.125, 0.25, 0.5, 0.5, 0.5]
    np.testing.assert_allclose(lrs(config("cosine"), [50, 100]), [0.25, 0.0], atol=1e-7)       # half-way: half
    np.testing.assert_allclose(lrs(config("linear", end_factor=0.2), [100]), [0.1], rtol=1e-6)  # ends at e·lr
    np.testing.assert_allclose(lrs(config("rex"), [50]), [LR * 2 / 3], rtol=1e-6)             # 0.5/0.75
    np.testing.assert_allclose(lrs(config("one_minus_sqrt"), [25]), [0.25], rtol=1e-6)         # 1 − √¼
    np.testing.assert_allclose(lrs(config("exponential", end_factor=0.04), [50]), [0.1], rtol=1e-6)  # √0.04
    np.testing.assert_allclose(lrs(config("inv_sqrt", warmup_steps=10), [40]), [0.25], rtol=1e-6)   # √(w/t) = ½


@pytest.mark.parametrize("shape", ["linear", "cosine", "one_minus_sqrt"])
def test_wsd(shape):
    w, e, frac = 5, 0.1, 0.3          # decay over the last 30 steps: [70, 100]
    c = config("wsd", warmup_steps=w, end_factor=e, decay_fraction=frac, decay_shape=shape)
    f = {"linear": lambda p: 1 - p, "cosine": lambda p: 0.5 * (1 + math.cos(math.pi * p)),
         "one_minus_sqrt": lambda p: 1 - math.sqrt(p)}[shape]
    steps = [0, 4, 5, 40, 69, 70, 71, 85, 99, 100]
    want = [warm(t, w) if t < w else (1.0 if t < 70 else e + (1 - e) * f((t - 70) / 30)) for t in steps]
    np.testing.assert_allclose(lrs(c, steps), LR * np.array(want), rtol=2e-6, atol=1e-7)
    assert lrs(c, [69])[0] == LR and lrs(c, [70])[0] == LR       # stable phase is exactly the peak


def test_cyclic_rewarms_from_the_floor():
    w, e = 10, 0.1                   # two cycles of 50 steps, cosine re-decay
    c = config("cyclic", warmup_steps=w, end_factor=e, num_cycles=2, decay_shape="cosine")
    cos = lambda p: e + (1 - e) * 0.5 * (1 + math.cos(math.pi * p))  # noqa: E731
    want = {0: 0.1, 9: 1.0, 10: 1.0, 30: cos(0.5), 49: cos(39 / 40),
            50: e + (1 - e) * 0.1, 54: e + (1 - e) * 0.5, 59: 1.0, 60: 1.0, 80: cos(0.5), 99: cos(39 / 40)}
    np.testing.assert_allclose(lrs(c, list(want)), LR * np.array(list(want.values())), rtol=2e-6)


def test_refined_schedule_from_constant_norms_is_linear_decay(tmp_path):
    path = str(tmp_path / "g.npy")
    np.save(path, np.full(T, 3.0))
    c = config("refined", refine_path=path, refine_width=0.05)
    steps = np.arange(T)
    np.testing.assert_allclose(lrs(c, steps), LR * (T - 1 - steps) / (T - 1), rtol=1e-5, atol=1e-7)
    # On a budget twice as long, the recorded curve is stretched: step 2i takes the value of recorded step i.
    np.testing.assert_allclose(lrs(c, [0, 100, 198], total=2 * T), LR * np.array([99, 49, 0]) / 99, rtol=1e-5,
                               atol=1e-7)


def test_traced_schedule_numbers_vmap_to_the_config_values():
    """lr, warmup and end factor from hp (vmapped) == the same values set in the config."""
    base = config("cosine")
    lr, warmup, end = np.array([0.1, 0.3]), np.array([0.0, 20.0]), np.array([0.0, 0.25])
    steps = jnp.asarray(STEPS, jnp.int32)

    def sched(a, b, c):
        hp = {"lr": a, "schedule.warmup_steps": b, "schedule.end_factor": c}
        return make_schedule(base, T, hp)(steps)

    got = jax.jit(jax.vmap(sched))(lr, warmup, end)
    for i in range(2):
        c = config("cosine", warmup_steps=int(warmup[i]), end_factor=float(end[i]))
        c.lr = float(lr[i])
        np.testing.assert_allclose(got[i], lrs(c, STEPS), rtol=1e-6)
