"""Adam's diagonal preconditioner as its next step applies it, and Adam's direction with that preconditioner frozen.

    P = adam_preconditioner(opt_state, grads, b1=0.9, b2=0.999, eps=1e-8)   # pytree like params
    tx = make_optimizer(cfg, steps, hp, direction=frozen_adam(0.9, P))    # the same step, P held fixed

At a state with count t, optax's ``scale_by_adam`` takes the step

    m ← β1 m + (1 − β1) g,   ν ← β2 ν + (1 − β2) g²,   u = m/P,   P = (1 − β1^{t+1}) (√(ν/(1 − β2^{t+1})) + ε)

(the bias corrections of both moments folded into P). With P held fixed the step on (θ, m) is linear in H near a
point, and it loses stability when λ1(P⁻¹H) reaches (2 + 2β1)/((1 − β1)η) (Cohen et al., 2022): the factor
(1 − β1^{t+1}) belongs in P, because the threshold is that of the *uncorrected* momentum (without it λ1(P⁻¹H) is
low by that factor early on: 0.651 at t = 10). ``grads`` is the gradient the next step will see; optax computes
the new ν from it inside the update, so freezing the *input* ν would not freeze the preconditioner.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax


def adam_preconditioner(opt_state, grads, b1, b2, eps, eps_root: float = 0.0) -> Any:
    """P of the next Adam step (module docstring), a positive pytree like params. b1, b2, eps may be traced.

    opt_state: any optimiser state holding one ``optax.ScaleByAdamState`` (chains, masks, EMA wrappers: found by
    ``optax.tree_utils.tree_get``, which refuses two). grads: the gradient the next step sees, like params."""
    state = optax.tree_utils.tree_get(opt_state, "ScaleByAdamState")
    if state is None:
        raise ValueError("adam_preconditioner: the optimiser state holds no optax.ScaleByAdamState")
    t1 = state.count + 1

    def one(nu, g):
        dt = nu.dtype
        nu1 = jnp.asarray(b2, dt) * nu + (1 - jnp.asarray(b2, dt)) * jnp.square(g.astype(dt))
        nu_hat = nu1 / (1 - jnp.asarray(b2, dt) ** t1.astype(dt))
        return ((1 - jnp.asarray(b1, dt) ** t1.astype(dt)) * (jnp.sqrt(nu_hat + eps_root) + eps)).astype(dt)

    return jax.tree.map(one, state.nu, grads)


def frozen_adam(b1, P) -> optax.GradientTransformation:
    """Adam's direction with the preconditioner held at P: m ← β1 m + (1 − β1) g, u = m/P; ν is carried
    unchanged (a constant of the frozen step). Same state as ``optax.scale_by_adam``, so it runs on Adam's state."""

    def init(params):
        return optax.scale_by_adam().init(params)

    def update(updates, state, params=None):
        del params
        mu = optax.tree_utils.tree_update_moment(updates, state.mu, b1, 1)
        out = jax.tree.map(lambda m, p: (m / p).astype(m.dtype), mu, P)
        return out, optax.ScaleByAdamState(count=optax.safe_increment(state.count), mu=mu,
                                           nu=jax.lax.stop_gradient(state.nu))

    return optax.GradientTransformation(init, update)
