"""Weight-decay metrics: group norms, effective lr, cautious fraction, Lion's ‖θ‖∞ ≤ 1/λ bound; and their logging."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.optim import default_optim_config, lion_linf_bound, make_optimizer, optim_metrics, resolve
from jaxlab.optim.metrics import effective_lr, group_norms

PARAMS = {"Dense_0": {"kernel": jnp.array([[3.0, 4.0]]), "bias": jnp.array([12.0])},
          "Dense_1": {"kernel": jnp.array([[1.0], [2.0]]), "bias": jnp.array([-2.0])}}


def test_group_norms_and_effective_lr_by_hand():
    norms = group_norms(PARAMS)
    np.testing.assert_allclose([norms["param_norm/Dense_0"], norms["param_norm/Dense_1"]], [13.0, 3.0])
    eff = effective_lr(PARAMS, 0.5, "Dense_0/kernel", power=2)
    assert list(eff) == ["eff_lr/Dense_0/kernel"]
    np.testing.assert_allclose(eff["eff_lr/Dense_0/kernel"], 0.5 / 25)
    c = default_optim_config()
    c.name, c.scale_invariant = "adam", "kernel"
    out = optim_metrics(PARAMS, optax.EmptyState(), 0.5, c, resolve(c))
    np.testing.assert_allclose([out["eff_lr/Dense_0/kernel"], out["eff_lr/Dense_1/kernel"]], [0.1, 0.5 / 5 ** 0.5])
    assert "cautious_fraction" not in out and "lion_linf" not in out


def _lion_run(theta0, steps=200, lam=2.0, lr=0.05):
    c = default_optim_config()
    c.name, c.wd_variant, c.weight_decay, c.lr, c.b2, c.wd_mask = "lion", "decoupled", lam, lr, 0.99, "all"
    tx = make_optimizer(c, steps)
    params = {"w": theta0}

    def step(carry, key):
        params, state = carry
        g = {"w": jax.random.normal(key, theta0.shape)}
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), jnp.max(jnp.abs(params["w"]))

    keys = jax.random.split(jax.random.PRNGKey(0), steps)
    (params, state), linf = jax.lax.scan(step, (params, tx.init(params)), keys)
    return c, params, state, np.asarray(linf)


def test_lion_decoupled_decay_bounds_the_parameters():
    # Started inside [−1/λ, 1/λ] = [−½, ½], θ stays there at every step; started at 3, it contracts inside.
    inside = jax.random.uniform(jax.random.PRNGKey(1), (64,), minval=-0.5, maxval=0.5)
    _, _, _, linf = _lion_run(inside)
    assert linf.max() <= 0.5 + 1e-6
    c, params, state, linf = _lion_run(jnp.full((64,), 3.0))
    assert linf[0] > 2.5 and linf[-1] <= 0.5 + 1e-6
    report = optim_metrics(params, state, 0.05, c, resolve(c))
    np.testing.assert_allclose(report["lion_linf_bound"], 0.5)
    np.testing.assert_allclose(report["lion_linf"], linf[-1])
    assert lion_linf_bound(params, 0.1, "independent", "all", lr=0.05)["lion_linf_bound"] == np.float32(0.5)


def test_training_records_carry_the_metrics(tiny_config):
    from jaxlab.train import run

    c = tiny_config
    c.train.steps = 10
    c.optim.name, c.optim.lr, c.optim.wd_variant, c.optim.weight_decay = "adam", 1e-3, "cautious", 0.1
    c.optim.scale_invariant = "Dense_1/kernel"
    rec = run(c, 0).records[-1]
    for key in ("param_norm/Dense_0", "param_norm/Dense_2", "eff_lr/Dense_1/kernel", "cautious_fraction"):
        assert key in rec, key
    assert 0.0 < rec["cautious_fraction"] < 1.0
    np.testing.assert_allclose(sum(rec[f"param_norm/Dense_{i}"] ** 2 for i in range(3)), rec["param_norm"] ** 2,
                               rtol=1e-5)
