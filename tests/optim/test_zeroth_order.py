"""Zeroth-order estimator and optimisers against closed forms (float64).

On L(θ) = ½θᵀAθ + bᵀθ the central two-point Gaussian estimator has (derivation in jaxlab/optim/zeroth_order.py)
    E[g] = ∇L = Aθ + b,    Cov[g] = (1/n)(‖∇L‖² I + ∇L ∇Lᵀ)    for every μ.
Monte-Carlo checks use S independent estimates and a tolerance of 5 standard errors (per entry, SE estimated from
the same samples), so a correct implementation fails with probability < 1e-5 per entry.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.config import ConfigError
from jaxlab.schema import validate
from jaxlab.optim import FIELDS, default_optim_config, is_zeroth_order, make_optimizer, resolve, zo_gradient
from jaxlab.optim.bases import OPTIMIZERS
from jaxlab.optim.zeroth_order import ZEROTH_ORDER, zo_value_and_grad

D = 5
S = 100_000


def _quadratic(seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(D, D))
    a = q @ q.T / D + np.eye(D)
    b = rng.normal(size=D)
    theta = rng.normal(size=D)
    params = {"w": jnp.asarray(theta[:3]), "v": jnp.asarray(theta[3:])}   # a pytree, flattened as (v, w)
    flat = np.concatenate([theta[3:], theta[:3]])                           # ravel order: sorted keys

    def loss(p):
        x = jnp.concatenate([p["v"], p["w"]])
        return 0.5 * x @ jnp.asarray(a) @ x + jnp.asarray(b) @ x

    return loss, params, a @ flat + b


def _samples(loss, params, n, mu=1e-2):
    keys = jax.random.split(jax.random.PRNGKey(1), S)
    est = jax.jit(jax.vmap(lambda k: zo_gradient(loss, params, k, n, mu)))(keys)
    return np.concatenate([np.asarray(est["v"]), np.asarray(est["w"])], axis=1)   # [S, D]


@pytest.mark.parametrize("n", [1, 3])
def test_estimator_mean_and_covariance_match_closed_form(x64, n):
    loss, params, grad = _quadratic()
    g = _samples(loss, params, n)
    cov = (np.dot(grad, grad) * np.eye(D) + np.outer(grad, grad)) / n
    mean_se = np.sqrt(np.diag(cov) / S)
    np.testing.assert_array_less(np.abs(g.mean(0) - grad), 5 * mean_se)
    centred = g - grad                                   # the exact mean: no extra estimation error
    prods = centred[:, :, None] * centred[:, None, :]    # [S, D, D]
    cov_se = prods.std(0) / np.sqrt(S)
    np.testing.assert_array_less(np.abs(prods.mean(0) - cov), 5 * cov_se)


def test_central_difference_is_exact_on_a_quadratic(x64):
    """Same directions, radii 1e-3 and 10: identical estimates (the forward difference would differ by O(μ))."""
    loss, params, _ = _quadratic()
    key = jax.random.PRNGKey(3)
    small, large = (jax.jit(lambda m: zo_gradient(loss, params, key, 4, m))(m) for m in (1e-3, 10.0))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10), small, large)
    value, _ = zo_value_and_grad(loss, params, key, 4, 1e-3)
    np.testing.assert_allclose(value, loss(params), rtol=1e-15)


def test_mu_is_traceable_and_vmappable(x64):
    """A sweep over μ through hp is one program; on a quadratic every μ gives the same estimate."""
    loss, params, _ = _quadratic()
    cfg = default_optim_config()
    cfg.zo_directions = 2

    def est(mu):
        return zo_gradient(loss, params, jax.random.PRNGKey(0), cfg.zo_directions, resolve(cfg, {"zo_mu": mu}).zo_mu)

    out = jax.jit(jax.vmap(est))(jnp.array([1e-3, 1e-1, 1.0]))
    for leaf in jax.tree.leaves(out):
        np.testing.assert_allclose(leaf, np.broadcast_to(leaf[:1], leaf.shape), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name,reference", [
    ("zo_sgd", lambda c: optax.sgd(c.lr)),
    ("zo_momentum", lambda c: optax.sgd(c.lr, momentum=c.momentum)),
    ("zo_adam", lambda c: optax.adam(c.lr, b1=c.b1, b2=c.b2, eps=c.eps)),
])
def test_zo_optimisers_are_the_first_order_transform_on_the_estimate(x64, name, reference):
    loss, params, _ = _quadratic()
    c = default_optim_config()
    c.name, c.lr, c.weight_decay, c.zo_directions, c.zo_mu = name, 0.05, 0.0, 2, 1e-3
    assert is_zeroth_order(name) and not is_zeroth_order(ZEROTH_ORDER[name]) and name in OPTIMIZERS
    tx, ref = make_optimizer(c, 10), reference(c)
    p, q = params, params
    s, r = tx.init(p), ref.init(q)
    n, mu = c.zo_directions, resolve(c).zo_mu
    for t in range(4):
        g = zo_gradient(loss, p, jax.random.PRNGKey(t), n, mu)
        u, s = tx.update(g, s, p)
        v, r = ref.update(g, r, q)
        p, q = optax.apply_updates(p, u), optax.apply_updates(q, v)
    # rtol 1e-6: jaxlab's schedule multiplier is float32 (lr·1.0 in float32 differs from 0.05 by ~1e-9 relative).
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12), p, q)


@pytest.mark.parametrize("overrides,match", [({"zo_directions": 0}, "optim.zo_directions"),
                                             ({"zo_mu": 0.0}, "optim.zo_mu"),
                                             ({"lion_b2": 1.0}, "optim.lion_b2")])
def test_bad_zo_settings_fail_validation(tiny_config, overrides, match):
    with tiny_config.unlocked():
        tiny_config.optim.name = "zo_sgd"
        for k, v in overrides.items():
            tiny_config.optim[k] = v
    with pytest.raises(ConfigError, match=match):
        validate(tiny_config)


def test_zo_directions_is_static_and_zo_mu_traceable():
    assert "zo_mu" in FIELDS and "zo_directions" not in FIELDS


def test_lion_uses_its_own_b2_default(x64):
    """Lion's β₂ defaults to 0.99 (Chen et al., 2023; optax), independent of adam's b2 = 0.999; hp may sweep it."""
    c = default_optim_config()
    c.name, c.lr, c.weight_decay = "lion", 0.1, 0.0
    assert c.lion_b2 == 0.99 and c.b2 == 0.999
    rng = np.random.default_rng(0)
    grads = [jnp.asarray(rng.normal(size=4)) for _ in range(5)]

    def run(tx):
        p = jnp.zeros(4)
        s = tx.init(p)
        for g in grads:
            u, s = tx.update(g, s, p)
            p = p + u
        return np.asarray(p)

    lion = lambda b2: run(optax.lion(0.1, b1=0.9, b2=b2, weight_decay=0.0))   # noqa: E731
    np.testing.assert_allclose(run(make_optimizer(c, 10)), lion(0.99), rtol=1e-6)
    np.testing.assert_allclose(run(make_optimizer(c, 10, {"lion_b2": 0.5})), lion(0.5), rtol=1e-6)
    assert not np.allclose(lion(0.5), lion(0.99))
