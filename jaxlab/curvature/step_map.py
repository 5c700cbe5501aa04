"""The step map: the Jacobian J of one real optimiser step on the whole training state (parameters and the
optimiser's floating-point state), matrix-free. Its flip multiplier is any optimiser's edge of stability.

    lin = linearize_step(step_fn, params, opt_state)      # step_fn(params, opt_state) -> (params', opt_state')
    flip, imag, res = flip_multiplier(lin, key, num_iters=40)    # leftmost eigenvalue of J (−1: the edge)
    sigma = step_singular_values(lin, key, num_iters=40, k=8)   # top-k singular values of J [k]
    J = dense_step_jacobian(lin)                          # [D, D] (small models)

``step_fn`` is the real step, gradient included (``jaxlab.optim.make_step``: ∇L, or a zeroth-order estimate with a
fixed key), so J·v is one JVP through the gradient (an HVP) and the optax update. Integer state (step counts) is
held fixed. For GD, J = I − ηH: eigenvalues 1 − ηλ_i, and the leftmost reaches −1 exactly when λ1 = 2/η. For heavy
ball each Hessian eigenvalue gives a 2 × 2 companion block whose eigenvalue −1 appears at ηλ = 2 + 2β, and so on:
the edge of stability is a period-doubling (flip) of the step map, found here without a formula.
J's spectral radius is *not* the measure: flat and negative-curvature directions put eigenvalues at or above +1.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.curvature.arnoldi import arnoldi, leftmost
from jaxlab.curvature.lanczos import lanczos


class LinearStep(NamedTuple):
    """J and Jᵀ of one step on flat state vectors [D] (D = parameters + floating optimiser state)."""
    jvp: Callable[[jax.Array], jax.Array]       # [D] -> J v [D]
    vjp: Callable[[jax.Array], jax.Array]       # [D] -> Jᵀ v [D]
    x0: jax.Array                               # [D]: the flat state at the linearisation point


def _split(opt_state):
    """(floating leaves, rebuild(floats) -> opt_state) with integer leaves held as constants."""
    leaves, treedef = jax.tree.flatten(opt_state)
    is_float = [jnp.issubdtype(jnp.result_type(x), jnp.inexact) for x in leaves]
    floats = [x for x, f in zip(leaves, is_float) if f]

    def rebuild(new_floats):
        it = iter(new_floats)
        return treedef.unflatten([next(it) if f else x for x, f in zip(leaves, is_float)])

    return floats, rebuild, is_float


def linearize_step(step_fn: Callable, params, opt_state) -> LinearStep:
    """Linearise ``step_fn(params, opt_state) -> (params', opt_state')`` at (params, opt_state): the forward pass
    and the gradient are computed once; each J v is a tangent pass, each Jᵀ v its transpose."""
    floats, rebuild, is_float = _split(opt_state)
    x0, unravel = ravel_pytree((params, floats))

    def flat_step(x):
        p, f = unravel(x)
        p2, s2 = step_fn(p, rebuild(f))
        leaves = jax.tree.leaves(s2)
        return ravel_pytree((p2, [leaf for leaf, keep in zip(leaves, is_float) if keep]))[0].astype(x.dtype)

    _, jvp = jax.linearize(flat_step, x0)
    transpose = jax.linear_transpose(jvp, x0)
    return LinearStep(jvp=jvp, vjp=lambda v: transpose(v)[0], x0=x0)


def flip_multiplier(lin: LinearStep, key: jax.Array, num_iters: int, v0: jax.Array | None = None):
    """The leftmost eigenvalue of J by ``num_iters`` Arnoldi steps -> (real part, |imaginary part|, residual).

    The real part reaches −1 at the step's edge of stability (a period-doubling); the residual ‖Jy − zy‖ (Ritz
    bound) says whether num_iters sufficed. v0: a start vector [D] (e.g. the previous measurement's), else random.
    """
    k_start, k_restart = jax.random.split(key)
    if v0 is not None:
        chex.assert_shape(v0, lin.x0.shape)
    v = jax.random.normal(k_start, lin.x0.shape, lin.x0.dtype) if v0 is None else v0
    m = min(int(num_iters), lin.x0.shape[0])
    _, H = arnoldi(lin.jvp, v, m, k_restart)
    return leftmost(H)


def step_singular_values(lin: LinearStep, key: jax.Array, num_iters: int, k: int):
    """Top-k singular values [k] (descending) of J, by Lanczos on JᵀJ (full reorthogonalisation)."""
    ev, _ = lanczos(lambda v: lin.vjp(lin.jvp(v)), lin.x0, key, num_iters, k=k)
    return jnp.sqrt(jnp.maximum(ev, 0.0))


def dense_step_jacobian(lin: LinearStep) -> jax.Array:
    """J [D, D] column by column (D tangent passes): for small models and tests."""
    eye = jnp.eye(lin.x0.shape[0], dtype=lin.x0.dtype)
    return jax.vmap(lin.jvp, out_axes=1)(eye)


def real_step(step, loss_fn: Callable, key: jax.Array, update: Callable | None = None) -> Callable:
    """(params, opt_state) -> (params', opt_state'): one step of ``step`` (a ``jaxlab.optim`` Step: gradient and
    update) on ``loss_fn(params) -> scalar``; ``update`` replaces the step's own (e.g. its frozen form)."""
    upd = step.update if update is None else update

    def fn(params, opt_state):
        grads = step.gradient(loss_fn, params, key)
        updates, new_state = upd(grads, opt_state, params)
        return jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates), new_state

    return fn

