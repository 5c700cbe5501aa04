"""Curvature quantities by name: what the tracker can record, each a function of a small typed context.

    QUANTITIES["sharpness"].fn(ctx) -> {"sharpness": λ1, "sharpness_residual": ...}
    compared_key("preconditioned") -> "preconditioned_sharpness"   # what a declared threshold is compared with

A quantity declares what it reads (the shared top-k Lanczos eigenpairs, the Hutchinson trace, the dense spectrum,
the optimiser's step or its preconditioner); the tracker (jaxlab.curvature.tracker) computes each once per
measurement. Quantities of the step map are in step_quantities.py, ZO mean-square ones in zo_quantities.py. None
knows an optimiser: what differs between optimisers arrives in ``ctx.declared`` (jaxlab.optim.dynamics).
Register more with ``@register_quantity(name, needs_eigs=...)``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.curvature import linalg
from jaxlab.curvature.alignment import alignment, layer_shares
from jaxlab.curvature.krylov import lanczos_adaptive
from jaxlab.curvature.lanczos import lanczos
from jaxlab.curvature.ntk import mse_row_weights, ntk_top_eigenvalues
from jaxlab.curvature.preconditioned import preconditioned_matvec
from jaxlab.registry import registrar


class Context(NamedTuple):
    """What a quantity reads. Fields after ``key`` are None unless some recorded quantity needs them."""
    tracker: Any           # the Tracker: its static settings (num_iters, apply_fn, declared, ...)
    params: Any
    opt_state: Any
    numbers: Any           # the run's optimiser Numbers at this step (jaxlab.optim): lr the current one, b1, ...
    batch: Any             # (x, y): the curvature set
    matvec: Callable       # v -> Hv on the curvature set
    key: jax.Array         # this measurement's key (the run's curvature seed folded with the step)
    step: Any = None       # jaxlab.optim Step (update, gradient, frozen_update), for the step-map quantities
    eigvals: Any = None    # [k] descending
    eigvecs: Any = None    # pytree, leading axis k
    residuals: Any = None  # [k]
    dense_eigvals: Any = None  # [d] ascending: the full Hessian spectrum
    trace: Any = None          # (mean, stderr) of the Hutchinson trace
    grads: Any = None          # the gradient the next step uses, on the curvature set
    precond: Any = None        # the declared preconditioner P of the next step (pytree like params)
    krylov: Any = None         # the Hessian's Lanczos result (jaxlab.curvature.krylov.Krylov)
    ntk: Any = None            # (NTK λ1 [], operator products []) when the tracker computed it (shared pass)


class Quantity(NamedTuple):
    fn: Callable[[Context], dict]   # ctx -> {record key: scalar}
    needs_eigs: bool = False        # reads the shared top-k Lanczos eigenvalues
    needs_vectors: bool = False     # ... and their eigenvectors
    needs_dense: bool = False       # reads the full spectrum of the dense Hessian (small models only)
    needs_trace: bool = False       # reads the shared Hutchinson trace (mean, stderr)
    needs_precond: bool = False     # reads the optimiser's declared preconditioner (and so the gradient)
    needs_step: bool = False        # reads the optimiser's real step (the tracker must be called with step=)
    needs_ntk: bool = False         # reads the NTK λ1 the tracker computes from the shared linearisation


QUANTITIES: dict[str, Quantity] = {}

# What a declared threshold applies to (jaxlab.optim.dynamics.OPERATORS) -> the record holding that curvature.
COMPARED = {"hessian": "sharpness", "preconditioned": "preconditioned_sharpness", "zo_mean_square": "zo_sharpness"}


def compared_key(operator: str) -> str:
    """The record key of the curvature a threshold on ``operator`` is compared with."""
    return COMPARED[operator]


# Decorator: ``fn(ctx: Context) -> {key: scalar}`` recorded under ``curvature.quantities`` name ``name``, with the
# Quantity flags it needs: ``@register_quantity("trace", needs_trace=True)``.
register_quantity = registrar(QUANTITIES, Quantity)


def quantity_names(curv_cfg) -> tuple[str, ...]:
    """curvature.quantities as a tuple of names ("sharpness,trace" or a tuple of strings)."""
    q = curv_cfg.quantities
    if isinstance(q, str):
        q = [s.strip() for s in q.split(",")]
    return tuple(s for s in q if s)


def loss_on(ctx: Context, batch=None) -> Callable:
    """params -> the loss on the curvature set (or on ``batch``)."""
    b = ctx.batch if batch is None else batch
    return lambda p: ctx.tracker.loss_fn(p, b)


def operator_matvec(ctx: Context) -> Callable:
    """v -> the declared operator's symmetric form: H, or P^-1/2 H P^-1/2 when a preconditioner is declared."""
    return ctx.matvec if ctx.precond is None else preconditioned_matvec(ctx.matvec, ctx.precond)


def top_eigenvalue(ctx: Context, matvec: Callable, key: jax.Array, k: int = 1):
    """Top-k eigenvalues [k] of ``matvec``: Lanczos of ``curvature.num_iters`` steps, or with ``curvature.tol`` > 0
    stopped by its Ritz residuals (num_iters the cap)."""
    t = ctx.tracker
    if t.tol > 0:
        return lanczos_adaptive(matvec, ctx.params, key, k=k, tol=t.tol, max_iters=t.num_iters).eigvals
    return lanczos(matvec, ctx.params, key, t.num_iters, k=k)[0]


def dense_operator_eigvalsh(ctx: Context):
    """The operator's full spectrum [d] (ascending): the dense Hessian, preconditioned when declared."""
    flat, unravel = ravel_pytree(ctx.params)
    H = jax.hessian(lambda f: ctx.tracker.loss_fn(unravel(f), ctx.batch))(flat)
    if ctx.precond is not None:
        s = 1.0 / jnp.sqrt(ravel_pytree(ctx.precond)[0])
        H = H * s[:, None] * s[None, :]
    return linalg.eigvalsh(0.5 * (H + H.T))


# ------------------------------------------------------------------------------------------------ quantities

@register_quantity("sharpness", needs_eigs=True)
def _sharpness(ctx: Context) -> dict:
    # Ritz residual ‖Hu − λu‖/|λ| (Lanczos' own bound): small means λ1 converged in num_iters.
    return {"sharpness": ctx.eigvals[0], "sharpness_residual": ctx.residuals[0] / jnp.abs(ctx.eigvals[0])}


@register_quantity("eig_gap", needs_eigs=True)
def _eig_gap(ctx: Context) -> dict:
    ev = ctx.eigvals
    out = {f"eig_{i + 1}": ev[i] for i in range(1, ev.shape[0])}
    out["eig_ratio"] = ev[0] / ev[1]
    return out


@register_quantity("trace", needs_trace=True)
def _trace(ctx: Context) -> dict:
    mean, stderr = ctx.trace
    return {"hessian_trace": mean, "hessian_trace_stderr": stderr}


@register_quantity("ntk", needs_ntk=True)
def _ntk(ctx: Context) -> dict:
    t = ctx.tracker
    if ctx.ntk is not None:   # from the shared linearisation, warm-started (jaxlab.curvature.tracker)
        return {"ntk_max": ctx.ntk[0], "ntk_iters": ctx.ntk[1]}
    if t.loss_kind != "mse":  # for cross-entropy J Jᵀ/n is not the Gauss–Newton matrix: no number beats a wrong one
        raise ValueError(f"curvature quantity 'ntk' describes an MSE loss, not {t.loss_kind or 'an unnamed loss'!r}")
    x, y = ctx.batch
    out = jax.eval_shape(lambda p: t.apply_fn(p, x), ctx.params)
    # The loss averages ½‖f − onehot‖² over the valid rows (labels ≥ 0): GGN = Jᵀ W J / n_valid, W the row mask.
    w, scale = mse_row_weights(out.shape, y, out.dtype)
    ev, _ = ntk_top_eigenvalues(t.apply_fn, ctx.params, x, jax.random.fold_in(ctx.key, 2), t.num_iters, k=1,
                                scale=scale, row_weights=w)
    return {"ntk_max": ev[0]}


@register_quantity("preconditioned", needs_precond=True)
def _preconditioned(ctx: Context) -> dict:
    ev = top_eigenvalue(ctx, operator_matvec(ctx), jax.random.fold_in(ctx.key, 3))
    return {"preconditioned_sharpness": ev[0]}


@register_quantity("alignment", needs_eigs=True, needs_vectors=True)
def _alignment(ctx: Context) -> dict:
    t = ctx.tracker
    u = jax.tree.map(lambda x: x[0], ctx.eigvecs)
    mask = t.decay_mask(ctx.params) if t.decay_mask is not None else None  # θ as weight decay moves it
    return {f"align_{k}": v for k, v in alignment(loss_on(ctx), ctx.params, u, theta_mask=mask).items()}


@register_quantity("layer_shares", needs_eigs=True, needs_vectors=True)
def _layer_shares(ctx: Context) -> dict:
    u = jax.tree.map(lambda x: x[0], ctx.eigvecs)
    return {f"share/{path}": v for path, v in layer_shares(u).items()}
