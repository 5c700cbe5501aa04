"""Weight-decay variants against hand-computed updates and an independent numpy reference of each base method."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.optim import decay_mask, default_optim_config, make_optimizer

PARAMS = {"dense": {"kernel": np.array([[1.0, -2.0], [0.5, 3.0]], np.float32),
                    "bias": np.array([0.1, -0.2], np.float32)},
          "norm": {"scale": np.array([1.0, -0.5], np.float32)}}
GRADS = [jax.tree.map(lambda x, k=k: np.cos(np.arange(x.size) + 3 * k).reshape(x.shape).astype(np.float32), PARAMS)
         for k in range(3)]
T = 10


def config(name="sgd", variant="decoupled", wd=0.3, lr=0.1, mask="default", schedule="linear", warmup=2):
    c = default_optim_config()
    c.name, c.wd_variant, c.weight_decay, c.lr, c.wd_mask = name, variant, wd, lr, mask
    c.momentum, c.b1, c.b2, c.eps = 0.8, 0.9, 0.99, 1e-3
    c.schedule.name, c.schedule.warmup_steps = schedule, warmup
    return c


def run_steps(c, grads=GRADS, params=PARAMS, hp=None):
    tx = make_optimizer(c, T, hp)
    state = tx.init(params)
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


# ------------------------------------------------------------------------------------------- numpy reference

def multiplier(t, w=2):  # linear decay after a warmup of 2 over T = 10
    return (t + 1) / w if t < w else 1 - (t - w) / (T - w)


def reference(c, grads=GRADS, params=PARAMS):
    """Independent per-leaf numpy implementation of base × variant (float64)."""
    mask = {"dense": {"kernel": 1.0, "bias": 0.0}, "norm": {"scale": 0.0}}
    if c.wd_mask == "all":
        mask = jax.tree.map(lambda _: 1.0, mask)
    leaves = lambda tree: jax.tree.leaves(tree)  # noqa: E731 - same order for every tree
    theta = [np.asarray(x, np.float64) for x in leaves(params)]
    m = [np.zeros_like(x) for x in theta]
    v = [np.zeros_like(x) for x in theta]
    lam, lr = c.weight_decay, c.lr
    for k, grad in enumerate(grads):
        s = multiplier(k)
        for i, (g, mk) in enumerate(zip(leaves(grad), leaves(mask))):
            g = np.asarray(g, np.float64)
            th = theta[i]
            d = g + lam * mk * th if c.wd_variant == "l2" else g
            if c.name == "sgd":
                u = d
            elif c.name == "momentum":
                m[i] = c.momentum * m[i] + d
                u = m[i]
            elif c.name == "adam":
                m[i] = c.b1 * m[i] + (1 - c.b1) * d
                v[i] = c.b2 * v[i] + (1 - c.b2) * d ** 2
                u = (m[i] / (1 - c.b1 ** (k + 1))) / (np.sqrt(v[i] / (1 - c.b2 ** (k + 1))) + c.eps)
            elif c.name == "lion":
                u = np.sign(c.b1 * m[i] + (1 - c.b1) * d)
                m[i] = c.b2 * m[i] + (1 - c.b2) * d
            if c.wd_variant in ("none", "l2"):
                step = -lr * s * u
            elif c.wd_variant == "decoupled":
                step = -lr * s * (u + lam * mk * th)
            elif c.wd_variant == "independent":
                step = -lr * s * u - s * lam * mk * th
            elif c.wd_variant == "cautious":
                step = -lr * s * (u + lam * mk * (u * th >= 0) * th)
            theta[i] = th + step
    return theta


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "lion"])
@pytest.mark.parametrize("variant", ["none", "l2", "decoupled", "independent", "cautious"])
def test_every_base_and_variant_matches_reference(name, variant):
    c = config(name, variant, wd=0.0 if variant == "none" else 0.3)
    got, _ = run_steps(c)
    for a, b in zip(jax.tree.leaves(got), reference(c)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_cautious_decay_by_hand():
    # θ = [2, −1, 3, −4], g = [1, 1, −1, −1]: u⊙θ ≥ 0 at coordinates 0 and 3 only.
    # update = −lr·(g + λ·[2, 0, 0, −4]) = −0.1·[2, 1, −1, −3] with λ = 0.5.
    params = {"w": jnp.array([[2.0, -1.0, 3.0, -4.0]])}
    grads = {"w": jnp.array([[1.0, 1.0, -1.0, -1.0]])}
    tx = make_optimizer(config("sgd", "cautious", wd=0.5, schedule="constant", warmup=0), T)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    np.testing.assert_allclose(updates["w"], [[-0.2, -0.1, 0.1, 0.3]], rtol=1e-6)
    assert float(optax.tree_utils.tree_get(state, "decayed_fraction")) == 0.5


def test_lr_coupling_of_decoupled_and_independent_decay():
    # Zero gradient isolates the decay. At step 0 the warmup multiplier is ½ (lr_0 = 0.05):
    # decoupled shrinks θ by lr_0·λ = 0.015, independent by s_0·λ = 0.15 (the peak lr plays no part).
    params = {"w": jnp.ones((2, 2))}
    zero = {"w": jnp.zeros((2, 2))}
    for variant, shrink in (("decoupled", 0.015), ("independent", 0.15)):
        tx = make_optimizer(config("sgd", variant, wd=0.3), T)
        updates, _ = tx.update(zero, tx.init(params), params)
        np.testing.assert_allclose(updates["w"], -shrink * np.ones((2, 2)), rtol=1e-6)


def test_default_mask_spares_biases_and_norm_scales():
    mask = decay_mask("default")(PARAMS)
    assert mask == {"dense": {"kernel": True, "bias": False}, "norm": {"scale": False}}
    assert decay_mask(("bias$", "norm/"))(PARAMS) == {"dense": {"kernel": False, "bias": True}, "norm": {"scale": True}}
    assert all(jax.tree.leaves(decay_mask("all")(PARAMS)))
    assert not any(jax.tree.leaves(decay_mask("none")(PARAMS)))
    # With zero gradients only the masked leaves move.
    zero = jax.tree.map(np.zeros_like, PARAMS)
    got, _ = run_steps(config("sgd", "decoupled", mask="bias$"), grads=[zero])
    np.testing.assert_array_equal(got["dense"]["kernel"], PARAMS["dense"]["kernel"])
    np.testing.assert_array_equal(got["norm"]["scale"], PARAMS["norm"]["scale"])
    assert not np.allclose(got["dense"]["bias"], PARAMS["dense"]["bias"])


def test_sgd_l2_equals_sgdw_up_to_lr_rescaling_but_adam_l2_is_not_adamw():
    lr, lam = 0.1, 0.3
    l2, _ = run_steps(config("sgd", "l2", wd=lam, lr=lr, schedule="cosine"))
    decoupled, _ = run_steps(config("sgd", "decoupled", wd=lam, lr=lr, schedule="cosine"))
    independent, _ = run_steps(config("sgd", "independent", wd=lam * lr, lr=lr, schedule="cosine"))
    for a, b, d in zip(jax.tree.leaves(l2), jax.tree.leaves(decoupled), jax.tree.leaves(independent)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
        np.testing.assert_allclose(a, d, rtol=1e-6)
    # Momentum and Adam feed the L2 term through their state: no longer the same method.
    for name in ("momentum", "adam"):
        a, _ = run_steps(config(name, "l2", wd=lam))
        b, _ = run_steps(config(name, "decoupled", wd=lam))
        diff = np.abs(a["dense"]["kernel"] - b["dense"]["kernel"]).max()
        assert diff > 1e-3, (name, diff)


def test_adam_decoupled_is_optax_adamw():
    c = config("adam", "decoupled", wd=0.3, schedule="constant", warmup=0)
    got, _ = run_steps(c)
    mask = decay_mask("default")
    tx = optax.adamw(c.lr, b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=c.weight_decay, mask=mask)
    params, state = PARAMS, tx.init(PARAMS)
    for g in GRADS:
        u, state = tx.update(g, state, params)
        params = optax.apply_updates(params, u)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_grad_clip_and_parameter_ema():
    c = config("sgd", "none", wd=0.0, schedule="constant", warmup=0)
    c.grad_clip, c.ema = 1.0, 0.5
    params = {"w": jnp.array([0.0, 0.0])}
    tx = make_optimizer(c, T)
    state = tx.init(params)
    g = {"w": jnp.array([3.0, 4.0])}                      # norm 5 -> clipped to [0.6, 0.8]
    u, state = tx.update(g, state, params)
    np.testing.assert_allclose(u["w"], [-0.06, -0.08], rtol=1e-6)
    new = optax.apply_updates(params, u)
    np.testing.assert_allclose(state.ema["w"], [-0.03, -0.04], rtol=1e-6)   # ½·0 + ½·θ₁
    u, state = tx.update({"w": jnp.array([0.3, 0.4])}, state, new)        # below the clip: unchanged
    np.testing.assert_allclose(u["w"], [-0.03, -0.04], rtol=1e-6)
    np.testing.assert_allclose(state.ema["w"], [-0.06, -0.08], rtol=1e-6)  # ½·ema + ½·[−0.09, −0.12]


def test_mask_pattern_matching_nothing_is_an_error():
    from jaxlab.config import ConfigError

    with pytest.raises(ConfigError, match="wd_mask='kernal'.*dense/kernel"):
        decay_mask("kernal")(PARAMS)
