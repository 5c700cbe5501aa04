"""Preconditioned sharpness with Adam's declared preconditioner (real optax / jaxlab Adam states) and the sharpness
gradient, against dense float64."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab.schema import base_config
from jaxlab.curvature import alignment, layer_shares, make_hvp, preconditioned_sharpness, sharpness_gradient
from jaxlab.optim.bases import adam_threshold
from jaxlab.optim.factory import make_optimizer
from jaxlab.optim.numbers import Numbers
from jaxlab.optim.preconditioners import adam_preconditioner


def _adam_steps(problem, tx, steps=5):
    """Run ``steps`` Adam updates; return (params, state, gradients seen)."""
    @jax.jit
    def step(p, s):
        g = jax.grad(problem.loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, g

    p, s, grads = problem.params, tx.init(problem.params), []
    for _ in range(steps):
        p, s, g = step(p, s)
        grads.append(ravel_pytree(g)[0])
    return p, s, grads


def test_preconditioned_sharpness_matches_dense(problem):
    """P of the next step (t = 6): (1 − β1⁶)(√v̂₆ + ε), v̂₆ from the whole gradient history including the gradient
    at the current parameters, which the next update folds into ν before dividing."""
    b1, b2, eps, steps = 0.9, 0.99, 1e-8, 5
    params, state, grads = _adam_steps(problem, optax.adam(1e-2, b1=b1, b2=b2, eps=eps), steps)
    g_now = jax.grad(problem.loss)(params)
    nu = np.zeros_like(np.asarray(grads[0]))
    for g in grads + [ravel_pytree(g_now)[0]]:
        nu = b2 * nu + (1 - b2) * np.asarray(g) ** 2
    P_ref = (1 - b1 ** (steps + 1)) * (np.sqrt(nu / (1 - b2 ** (steps + 1))) + eps)
    P = adam_preconditioner(state, g_now, b1, b2, eps)
    np.testing.assert_allclose(np.asarray(ravel_pytree(P)[0]), P_ref, rtol=1e-12)

    flat, unravel = ravel_pytree(params)
    H = np.asarray(problem.hessian_at(flat))
    D = 1 / np.sqrt(P_ref)
    want = np.linalg.eigvalsh(D[:, None] * H * D[None, :])[::-1][:2]
    vals, _ = jax.jit(lambda p, P, key: preconditioned_sharpness(make_hvp(problem.loss, p), p, P, key, 60, k=2))(
        params, P, jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(vals), want, rtol=1e-6)
    np.testing.assert_allclose(adam_threshold(Numbers(lr=0.01, b1=0.9)), 38 / 0.01, rtol=1e-12)


@pytest.mark.parametrize("wd_variant,ema", [("decoupled", 0.0), ("l2", 0.9)])
def test_finds_adam_state_in_jaxlab_optimisers(problem, wd_variant, ema):
    cfg = base_config().optim
    cfg.name, cfg.wd_variant, cfg.weight_decay, cfg.ema, cfg.grad_clip = "adam", wd_variant, 0.1, ema, 1.0
    tx = make_optimizer(cfg, total_steps=10)
    _, state, grads = _adam_steps(problem, tx, steps=3)
    adam = optax.tree_utils.tree_get(state, "ScaleByAdamState")
    assert int(adam.count) == 3
    P = adam_preconditioner(state, jax.grad(problem.loss)(problem.params), cfg.b1, cfg.b2, cfg.eps)
    assert jax.tree.structure(P) == jax.tree.structure(problem.params)
    assert all(bool(jnp.all(x > 0)) for x in jax.tree.leaves(P))


def test_no_adam_state_is_an_error(problem):
    with pytest.raises(ValueError, match="ScaleByAdamState"):
        adam_preconditioner(optax.sgd(0.1).init(problem.params), problem.params, 0.9, 0.999, 1e-8)


def test_sharpness_gradient_matches_finite_difference(problem):
    """∇λ_max·e against (λ(θ+he) − λ(θ−he))/2h, h = 1e-5 in float64: truncation O(h²) ≈ 1e-10 and rounding
    ≈ 1e-16·λ/h ≈ 1e-11, so a relative tolerance of 1e-6 is loose yet fails on any real error."""
    assert problem.evals[0] - problem.evals[1] > 1e-3 * problem.evals[0]  # simple top eigenvalue
    u = problem.unravel(jnp.asarray(problem.evecs[:, 0]))
    g = np.asarray(ravel_pytree(jax.jit(lambda p, u: sharpness_gradient(problem.loss, p, u))(problem.params, u))[0])
    top, h = problem.top_at, 1e-5
    rng = np.random.default_rng(0)
    for e in [g / np.linalg.norm(g), *rng.normal(size=(2, g.size))]:
        fd = (float(top(problem.flat + h * e)) - float(top(problem.flat - h * e))) / (2 * h)
        np.testing.assert_allclose(g @ e, fd, rtol=1e-6, atol=1e-9 * np.linalg.norm(g))


def test_alignment_predicts_sharpness_change_under_weight_decay(problem):
    """The first-order change of λ_max over one decoupled-weight-decay GD step is −η(∇λ·∇L + wd·∇λ·θ)."""
    u = problem.unravel(jnp.asarray(problem.evecs[:, 0]))
    stats = jax.jit(lambda p, u: alignment(problem.loss, p, u))(problem.params, u)
    np.testing.assert_allclose(float(stats["lambda"]), problem.evals[0], rtol=1e-10)
    grad = np.asarray(ravel_pytree(jax.grad(problem.loss)(problem.params))[0])
    np.testing.assert_allclose(float(stats["cos_u_grad"]), problem.evecs[:, 0] @ grad / np.linalg.norm(grad),
                               rtol=1e-8)
    lr, wd = 1e-5, 0.5
    theta = np.asarray(problem.flat)
    moved = problem.top_at(problem.flat - lr * (grad + wd * theta))
    predicted = -lr * (float(stats["glam_dot_grad"]) + wd * float(stats["glam_dot_theta"]))
    np.testing.assert_allclose(float(moved) - problem.evals[0], predicted, rtol=1e-3)
    for key in ("cos_glam_theta", "cos_glam_grad", "cos_grad_theta", "cos_u_theta"):
        assert -1 - 1e-12 <= float(stats[key]) <= 1 + 1e-12


def test_layer_shares(problem):
    """Each leaf's share of ‖u‖² for the dense top eigenvector, against slices of the flat vector (ravel_pytree
    orders the dict's leaves layer_i/bias before layer_i/kernel)."""
    shares = jax.jit(layer_shares)(problem.unravel(jnp.asarray(problem.evecs[:, 0])))
    np.testing.assert_allclose(sum(float(v) for v in shares.values()), 1.0, rtol=1e-12)
    sq, start, want = problem.evecs[:, 0] ** 2, 0, {}
    for i, (a, b) in enumerate(zip((5, 8, 6), (8, 6, 3))):
        for name, size in (("bias", b), ("kernel", a * b)):
            want[f"layer_{i}/{name}"] = sq[start:start + size].sum()
            start += size
    assert set(shares) == set(want)
    for key, value in want.items():
        np.testing.assert_allclose(float(shares[key]), value, rtol=1e-10)
