"""Kendall's τ, the granulated coefficient and the modular-addition data against hand-computed values; the
gen_eos experiment's analysis on a hand-made table (no training)."""
import math

import numpy as np
import pytest

from experiments import gen_eos
from jaxlab.config import ConfigError
from jaxlab.data import get_dataset
from jaxlab.schema import base_config
from jaxlab.stats import granulated_kendall, kendall


def test_kendall_tau_by_hand():
    # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant (2↔3) -> τ = (5 − 1)/6
    assert kendall([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6, abs=1e-12)
    assert kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0, abs=1e-12)
    assert kendall([1, 2, float("nan"), 4], [1, 3, 9, 2]) == pytest.approx(1 / 3, abs=1e-12)  # NaN pair dropped
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))            # constant measure: undefined


# axes a ∈ {0, 1}, b ∈ {0, 1, 2}; one seed. Measure m and gap g per (a, b):
TABLE = [  # a, b, m, g
    (0, 0, 1.0, 1.0), (0, 1, 2.0, 3.0), (0, 2, 3.0, 2.0),
    (1, 0, 4.0, 4.0), (1, 1, 5.0, 5.0), (1, 2, 6.0, 0.0),
]


def test_granulated_kendall_by_hand():
    rows = [{"a": a, "b": b, "seed": 0, "m": m, "g": g} for a, b, m, g in TABLE]
    out = granulated_kendall(rows, "m", "g", ["a", "b"])
    # axis a: groups b = 0, 1, 2 (two rows each): τ = +1 (1<4, 1<4), +1 (2<5, 3<5), −1 (3<6, 2>0) -> ψ_a = 1/3
    assert out["per_axis"]["a"] == pytest.approx(1 / 3, abs=1e-12)
    # axis b: group a = 0: m 1,2,3 vs g 1,3,2 -> (C, D) = (2, 1) -> 1/3; a = 1: g 4,5,0 -> (1, 2) -> −1/3; ψ_b = 0
    assert out["per_axis"]["b"] == pytest.approx(0.0, abs=1e-12)
    assert out["psi"] == pytest.approx(1 / 6, abs=1e-12)
    assert out["groups"] == {"a": 3, "b": 2}


def test_granulated_kendall_keeps_seeds_apart_and_skips_undefined_groups():
    rows = [{"a": a, "seed": s, "m": float(a), "g": float(a if s == 0 else -a)} for a in (0, 1, 2) for s in (0, 1)]
    rows += [{"a": a, "seed": 2, "m": 1.0, "g": float(a)} for a in (0, 1, 2)]      # constant m: no τ
    out = granulated_kendall(rows, "m", "g", ["a"])
    assert out["per_axis"]["a"] == pytest.approx(0.0, abs=1e-12) and out["groups"]["a"] == 2   # (+1 − 1)/2


def test_modular_addition_data():
    c = base_config()
    c.data.name, c.data.modulus, c.data.train_fraction = "modular", 7, 0.5
    ds = get_dataset(c.data)
    # round(0.5 · 49) = 24 train pairs, 25 test
    assert ds.x_train.shape == (24, 14) and ds.x_test.shape == (25, 14) and ds.num_classes == 7
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    a, b = x[:, :7].argmax(1), x[:, 7:].argmax(1)
    np.testing.assert_array_equal(y, (a + b) % 7)
    assert len({(i, j) for i, j in zip(a, b)}) == 49                       # every pair once, train ∩ test = ∅


def _cfg(**gen):
    from experiments.configs.gen_eos import get_config
    c = get_config()
    for k, v in gen.items():
        c.gen[k] = v
    return c


@pytest.mark.parametrize("key, value", [("mode", "grok"), ("claim_measure", "nope"), ("measures", "lambda1"),
                                        ("fit_accuracy", 1.5)])
def test_bad_gen_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"gen.{key}|gen.measures"):
        gen_eos.check(_cfg(**{key: value}))


def test_analysis_of_a_hand_made_grid():
    """Measure = the gap exactly for sharpness_dim, its reverse for lambda1, noise-free constant for trace."""
    c = _cfg()
    rows = []
    for i, (lr, bs) in enumerate([(0.1, 32), (0.2, 32), (0.1, 128), (0.2, 128)]):
        gap = [0.1, 0.3, 0.2, 0.4][i]
        rows.append({"seed": 0, "optim.lr": lr, "train.batch_size": bs, "diverged": False, "gap": gap,
                     "accuracy_gap": gap, "train_loss": 0.1, "sharpness_dim": gap, "lambda1": -gap,
                     "trace": 1.0, "sharpness_dim_slq": gap + 0.01, "lyapunov_top": gap})
    table = gen_eos.kendall_summary(rows, ["sharpness_dim", "lambda1", "trace"], ["optim.lr", "train.batch_size"])
    assert table["sharpness_dim"]["tau"] == 1.0 and table["lambda1"]["tau"] == -1.0
    assert table["sharpness_dim"]["psi"] == 1.0 and math.isnan(table["trace"]["tau"])
    verdict = gen_eos.claim(table, c.gen)
    assert verdict["tau_holds"] is False          # the trace's τ is undefined: no claim over it
    c.gen.claim_against = "lambda1"
    assert gen_eos.claim(table, c.gen)["holds"] is True
