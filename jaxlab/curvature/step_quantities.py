"""Tracker quantities of the step map: J, the Jacobian of one real optimiser step on the training state
(jaxlab.curvature.step_map). They read the optimiser's real step (``ctx.step``), so they work for any optax
optimiser, with or without a closed-form threshold.

Records:
  step_flip        step_flip (real part of J's leftmost eigenvalue: −1 at the edge of stability),
                   step_flip_imag, step_flip_residual (Arnoldi's Ritz bound). When the optimiser declares a frozen
                   preconditioner, also step_flip_frozen (the same step with P held fixed: the map the
                   closed-form threshold describes)
  sharpness_dim    sharpness_dim (Kaplan–Yorke dimension of the mean top-k log singular values of J over
                   curvature.dim_samples sampled maps; NaN when the top k cannot decide it),
                   sharpness_dim_determined (1/0), step_lyapunov_top (mean log σ1(J): the top exponent)
  step_dense       step_flip_dense and sharpness_dim_dense from the dense J (small models: D tangent passes)
  sharpness_dim_dense   sharpness_dim_dense and step_lyapunov_top_dense only (the SVDs of step_dense without its
                   non-symmetric eigenvalue problem): the exact Def. 4.2 estimate over the sampled maps
  sharpness_dim_slq     sharpness_dim_slq and slq_lyapunov_top: GD's exponents log|1 − ηθ| of A = H + λM (λ the
                   weight decay on the leaves the mask M selects) from SLQ of each sampled map's Hessian
                   (curvature.slq_iters Lanczos steps, curvature.trace_samples probes), n-quantiles filling the
                   whole spectrum (jaxlab.curvature.dimension.gd_exponent_quantiles). The real step's exponents
                   for SGD with l2 / decoupled weight decay; for other optimisers a GD surrogate of the same H
  sharpness_dim_step_slq   sharpness_dim_step_slq and step_slq_lyapunov_top: the same quantiles from SLQ of JᵀJ of
                   the real step (exponents ½ log θ) on the whole state: any optimiser, no dense J; with a
                   declared frozen preconditioner also *_frozen (the step with P held, as step_flip_frozen)

Sampled maps: a zeroth-order step draws its directions from the measurement key; with ``train.batch_size > 0``
each map's loss is a random minibatch of that size from the curvature set, so the exponents are those of the
random dynamical system that runs (Tuci et al., 2026, Def. 4.2). Full-batch first-order steps are deterministic:
one map suffices.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab.curvature import linalg
from jaxlab.curvature.dimension import gd_exponent_quantiles, kaplan_yorke_dimension, quantile_exponents
from jaxlab.curvature.quantities import Context, loss_on, register_quantity
from jaxlab.curvature.spectrum import slq_nodes
from jaxlab.curvature.step_map import (dense_step_jacobian, flip_multiplier, linearize_step, real_step,
                                       step_singular_values)


def _sampled_loss(ctx: Context, key):
    """params -> loss of one sampled map: a random minibatch of train.batch_size rows, or the whole set."""
    bs = ctx.tracker.batch_size
    n = jax.tree.leaves(ctx.batch)[0].shape[0]
    if not bs or bs >= n:
        return loss_on(ctx)
    idx = jax.random.choice(key, n, (bs,), replace=False)
    return loss_on(ctx, jax.tree.map(lambda a: a[idx], ctx.batch))


def _linear_step(ctx: Context, key, update=None):
    k_batch, k_dir = jax.random.split(key)
    return linearize_step(real_step(ctx.step, _sampled_loss(ctx, k_batch), k_dir, update), ctx.params,
                          ctx.opt_state)


def _num_maps(ctx: Context) -> int:
    t = ctx.tracker
    return t.dim_samples if (t.batch_size or t.declared.zeroth_order) else 1


@register_quantity("step_flip", needs_step=True)
def _step_flip(ctx: Context) -> dict:
    key = jax.random.fold_in(ctx.key, 5)
    iters = ctx.tracker.step_iters
    re, im, res = flip_multiplier(_linear_step(ctx, key), key, iters)
    out = {"step_flip": re, "step_flip_imag": im, "step_flip_residual": res}
    if ctx.step.frozen_update is not None and ctx.precond is not None:
        re, im, res = flip_multiplier(_linear_step(ctx, key, ctx.step.frozen_update(ctx.precond)), key, iters)
        out.update(step_flip_frozen=re, step_flip_frozen_imag=im, step_flip_frozen_residual=res)
    return out


@register_quantity("sharpness_dim", needs_step=True)
def _sharpness_dim(ctx: Context) -> dict:
    t = ctx.tracker
    keys = jax.random.split(jax.random.fold_in(ctx.key, 6), _num_maps(ctx))

    def one(key):
        sigma = step_singular_values(_linear_step(ctx, key), jax.random.fold_in(key, 1), t.step_iters, t.k)
        return jnp.log(sigma)

    ell = jnp.mean(jax.lax.map(one, keys), axis=0)                # [k]: mean log σ_i over the sampled maps
    sd, determined = kaplan_yorke_dimension(ell, _state_dim(ctx))
    return {"sharpness_dim": sd, "sharpness_dim_determined": determined.astype(ell.dtype),
            "step_lyapunov_top": ell[0]}


def _state_dim(ctx: Context) -> int:
    """D: parameters plus the optimiser's floating-point state (the dimension of the map)."""
    leaves = jax.tree.leaves((ctx.params, ctx.opt_state))
    return sum(x.size for x in leaves if jnp.issubdtype(jnp.result_type(x), jnp.inexact))


def _dense_maps(ctx: Context, flips: bool):
    """Per sampled map: log σ(J) [D] descending (and J's leftmost real eigenvalue when ``flips``)."""
    keys = jax.random.split(jax.random.fold_in(ctx.key, 6), _num_maps(ctx))

    def one(key):
        J = dense_step_jacobian(_linear_step(ctx, key))
        logs = jnp.log(linalg.svdvals(J))
        return (logs, jnp.min(jnp.real(linalg.eigvals(J)))) if flips else (logs, jnp.zeros((), logs.dtype))

    return jax.lax.map(one, keys)


@register_quantity("step_dense", needs_step=True)
def _step_dense(ctx: Context) -> dict:
    logs, flips = _dense_maps(ctx, flips=True)
    sd, _ = kaplan_yorke_dimension(jnp.mean(logs, axis=0))
    return {"sharpness_dim_dense": sd, "step_flip_dense": jnp.mean(flips)}


@register_quantity("sharpness_dim_dense", needs_step=True)
def _sharpness_dim_dense(ctx: Context) -> dict:
    ell = jnp.mean(_dense_maps(ctx, flips=False)[0], axis=0)
    return {"sharpness_dim_dense": kaplan_yorke_dimension(ell)[0], "step_lyapunov_top_dense": ell[0]}


@register_quantity("sharpness_dim_slq")
def _sharpness_dim_slq(ctx: Context) -> dict:
    t = ctx.tracker
    lr, wd = ctx.numbers.lr, ctx.numbers.weight_decay
    mask = t.decay_mask(ctx.params) if t.decay_mask is not None else jax.tree.map(lambda _: True, ctx.params)
    n = sum(x.size for x in jax.tree.leaves(ctx.params))
    keys = jax.random.split(jax.random.fold_in(ctx.key, 6), _num_maps(ctx))   # the maps sharpness_dim samples

    def one(key):
        k_batch, _ = jax.random.split(key)
        _, hvp = jax.linearize(jax.grad(_sampled_loss(ctx, k_batch)), ctx.params)
        mv = lambda v: jax.tree.map(lambda h, x, m: h + (wd * x if m else 0.0 * x), hvp(v), v, mask)  # noqa: E731
        nodes, w = slq_nodes(mv, ctx.params, jax.random.fold_in(key, 2), t.slq_iters, t.trace_samples)
        return gd_exponent_quantiles(nodes, w, lr, n)

    ell = jnp.mean(jax.lax.map(one, keys), axis=0)              # [n]: mean over maps of the sorted exponents
    return {"sharpness_dim_slq": kaplan_yorke_dimension(ell)[0], "slq_lyapunov_top": ell[0]}


@register_quantity("sharpness_dim_step_slq", needs_step=True)
def _sharpness_dim_step_slq(ctx: Context) -> dict:
    t = ctx.tracker
    keys = jax.random.split(jax.random.fold_in(ctx.key, 6), _num_maps(ctx))

    def dimension(update):
        def one(key):
            lin = _linear_step(ctx, key, update)
            nodes, w = slq_nodes(lambda v: lin.vjp(lin.jvp(v)), lin.x0, jax.random.fold_in(key, 2), t.slq_iters,
                                 t.trace_samples)
            ell = 0.5 * jnp.log(jnp.maximum(nodes, jnp.finfo(nodes.dtype).tiny))  # σ² ≥ 0; rounding dips below
            return quantile_exponents(ell, w, lin.x0.shape[0])

        ell = jnp.mean(jax.lax.map(one, keys), axis=0)
        return kaplan_yorke_dimension(ell)[0], ell[0]

    out = dict(zip(("sharpness_dim_step_slq", "step_slq_lyapunov_top"), dimension(None)))
    if ctx.step.frozen_update is not None and ctx.precond is not None:   # the step with P held (Adam): no ∂(1/√v)
        frozen = dimension(ctx.step.frozen_update(ctx.precond))
        out.update(zip(("sharpness_dim_step_slq_frozen", "step_slq_lyapunov_top_frozen"), frozen))
    return out
