"""Curvature quantities by name: what the tracker can record, each a function of a small typed context.

    QUANTITIES["sharpness"].fn(ctx) -> {"sharpness": λ1, "sharpness_residual": ...}
    stability_threshold("momentum", {"lr": 0.05, "momentum": 0.9}) -> (2 + 2β)/η

A quantity declares what it reads (the shared top-k Lanczos eigenpairs, or the dense spectrum); the tracker
(jaxlab.curvature.tracker) computes those once per measurement. The list of quantities and what they record is
in the tracker's docstring. Register more with ``@register_quantity(name, needs_eigs=...)``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxlab.curvature.alignment import alignment, layer_shares
from jaxlab.curvature.dimension import sharpness_dimension
from jaxlab.curvature.lanczos import lanczos
from jaxlab.curvature.ntk import ntk_top_eigenvalues
from jaxlab.curvature.preconditioned import adam_preconditioner, adam_threshold, find_adam_state, preconditioned_matvec


class Context(NamedTuple):
    """What a quantity reads. eigvals [k] (descending), eigvecs (pytree, leading axis k) and residuals [k] are
    None unless some recorded quantity needs them."""
    tracker: Any           # the Tracker: its static settings (num_iters, apply_fn, zo_directions, ...)
    params: Any
    opt_state: Any
    numbers: dict          # resolved optimiser numbers at this step: lr, momentum, b1, b2, eps, ...
    batch: Any             # (x, y): the curvature set
    matvec: Callable       # v -> Hv on the curvature set
    key: jax.Array
    eigvals: Any = None
    eigvecs: Any = None
    residuals: Any = None
    dense_eigvals: Any = None  # [d] ascending: the full Hessian spectrum, when a quantity needs it
    trace: Any = None          # (mean, stderr) of the Hutchinson trace, when a quantity needs it


class Quantity(NamedTuple):
    fn: Callable[[Context], dict]   # ctx -> {record key: scalar}
    needs_eigs: bool = False        # reads the shared top-k Lanczos eigenvalues
    needs_vectors: bool = False     # ... and their eigenvectors
    needs_dense: bool = False       # reads the full spectrum of the dense Hessian (small models only)
    needs_trace: bool = False       # reads the shared Hutchinson trace (mean, stderr)


QUANTITIES: dict[str, Quantity] = {}


def register_quantity(name: str, needs_eigs: bool = False, needs_vectors: bool = False, needs_dense: bool = False,
                      needs_trace: bool = False):
    """Decorator: ``fn(ctx: Context) -> {key: scalar}`` recorded under ``curvature.quantities`` name ``name``."""
    def deco(fn):
        QUANTITIES[name] = Quantity(fn, needs_eigs, needs_vectors, needs_dense, needs_trace)
        return fn
    return deco


def quantity_names(curv_cfg) -> tuple[str, ...]:
    """curvature.quantities as a tuple of names ("sharpness,trace" or a tuple of strings)."""
    q = curv_cfg.quantities
    if isinstance(q, str):
        q = [s.strip() for s in q.split(",")]
    return tuple(s for s in q if s)


# ------------------------------------------------------------------------------------------------ thresholds

def stability_threshold(optimizer: str, numbers: dict, nesterov: bool = False):
    """The optimiser's edge-of-stability threshold from its (possibly traced) numbers, or None (no known one)."""
    lr = numbers["lr"]
    if optimizer == "sgd":
        return 2.0 / lr
    if optimizer == "momentum":
        b = numbers["momentum"]
        return (2.0 + 2.0 * b) / ((1.0 + 2.0 * b) * lr) if nesterov else (2.0 + 2.0 * b) / lr
    if optimizer == "adam":
        return adam_threshold(lr, numbers["b1"])
    if optimizer == "zo_sgd":
        return 2.0 / lr  # on the effective sharpness 2/η*(H): ZO-GD is mean-square stable iff η < η*
    return None


def uses_preconditioner(optimizer: str) -> bool:
    return optimizer == "adam"


def compared_key(optimizer: str) -> str:
    """The record key of the curvature the optimiser's threshold applies to."""
    if uses_preconditioner(optimizer):
        return "preconditioned_sharpness"
    if optimizer == "zo_sgd":
        return "zo_sharpness"  # the dense value; the λ1/trace bounds have ratios of their own
    return "sharpness"


def compared(optimizer: str, out: dict):
    """The recorded curvature the threshold applies to, or None when it was not measured."""
    return out.get(compared_key(optimizer))


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


@register_quantity("ntk")
def _ntk(ctx: Context) -> dict:
    t = ctx.tracker
    if t.loss_kind != "mse":  # for cross-entropy J Jᵀ/n is not the Gauss–Newton matrix: no number beats a wrong one
        raise ValueError(f"curvature quantity 'ntk' describes an MSE loss, not {t.loss_kind or 'an unnamed loss'!r}")
    x = ctx.batch[0]
    out = jax.eval_shape(lambda p: t.apply_fn(p, x), ctx.params)
    rows = 1
    for d in out.shape[:-1]:  # the loss averages over every output row: examples, or examples × tokens
        rows *= d
    ev, _ = ntk_top_eigenvalues(t.apply_fn, ctx.params, x, jax.random.fold_in(ctx.key, 2), t.num_iters, k=1,
                                scale=1.0 / rows)
    return {"ntk_max": ev[0]}


@register_quantity("preconditioned")
def _preconditioned(ctx: Context) -> dict:
    t = ctx.tracker
    if not uses_preconditioner(t.optimizer):
        return {}
    n = ctx.numbers
    P = adam_preconditioner(ctx.opt_state, b2=n["b2"], eps=n["eps"])
    ev, _ = lanczos(preconditioned_matvec(ctx.matvec, P), ctx.params, jax.random.fold_in(ctx.key, 3), t.num_iters, k=1)
    # Before Adam's first update there is no second-moment estimate (P = ε): the operator is not the one the
    # next step sees, so nothing is recorded (NaN) rather than a ratio in the thousands.
    started = find_adam_state(ctx.opt_state).count > 0
    return {"preconditioned_sharpness": jnp.where(started, ev[0], jnp.nan)}


@register_quantity("alignment", needs_eigs=True, needs_vectors=True)
def _alignment(ctx: Context) -> dict:
    t = ctx.tracker
    u = jax.tree.map(lambda x: x[0], ctx.eigvecs)
    mask = t.decay_mask(ctx.params) if t.decay_mask is not None else None  # θ as weight decay moves it
    loss = lambda p: t.loss_fn(p, ctx.batch)  # noqa: E731
    return {f"align_{k}": v for k, v in alignment(loss, ctx.params, u, theta_mask=mask).items()}


@register_quantity("layer_shares", needs_eigs=True, needs_vectors=True)
def _layer_shares(ctx: Context) -> dict:
    u = jax.tree.map(lambda x: x[0], ctx.eigvecs)
    return {f"share/{path}": v for path, v in layer_shares(u).items()}


@register_quantity("sharpness_dim", needs_eigs=True)
def _sharpness_dim(ctx: Context) -> dict:
    d = sum(x.size for x in jax.tree.leaves(ctx.params))
    return {"sharpness_dim": sharpness_dimension(ctx.eigvals, ctx.numbers["lr"], dim=d, bulk="smallest")}


@register_quantity("zo_stability", needs_eigs=True, needs_trace=True)
def _zo_stability(ctx: Context) -> dict:
    n = ctx.tracker.zo_directions
    tr, _ = ctx.trace
    lam = ctx.eigvals[0]
    # 2/η* from the bounds 2n/(tr + (n+1)λ1) ≤ η* ≤ min(2n/tr, 2n/((n+1)λ1)) (PSD H)
    lower, upper = jnp.maximum(tr, (n + 1) * lam) / n, (tr + (n + 1) * lam) / n
    half = ctx.numbers["lr"] / 2.0
    return {"zo_sharpness_lower": lower, "zo_sharpness_upper": upper, "zo_ratio_lower": lower * half,
            "zo_ratio_upper": upper * half, "zo_trace": tr}


@register_quantity("zo_dense", needs_dense=True)
def _zo_dense(ctx: Context) -> dict:
    ev = ctx.dense_eigvals
    return {"zo_sharpness": 2.0 / zo_critical_lr_jnp(ev, ctx.tracker.zo_directions),
            "sharpness_dim_dense": sharpness_dimension(ev, ctx.numbers["lr"])}


def zo_critical_lr_jnp(eigs, n: int, iters: int = 60):
    """η*: root of φ(η) = (η/n) Σ_{λ>0} λ/(2 − η(1+1/n)λ) = 1 on (0, 2n/((n+1)λmax)) by bisection (jittable twin
    of jaxlab.curvature.zo_stability.zo_critical_lr on the positive part of the spectrum). Negative eigenvalues
    are left out: their directions grow under GD as well, and the edge of stability is about the oscillating,
    positive-curvature directions (GD's 2/λ1 ignores them too)."""
    lam = jnp.where(eigs > 0, eigs, 0.0)
    a = 1.0 + 1.0 / n
    hi0 = 2.0 / (a * jnp.max(lam))
    phi = lambda eta: (eta / n) * jnp.sum(lam / (2.0 - eta * a * lam))  # noqa: E731

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        below = phi(mid) < 1.0
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, _ = jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(hi0), hi0))
    return lo


def dense_hessian_eigvalsh(loss_fn: Callable, params, batch):
    """The full spectrum [d] (ascending) of the Hessian of loss_fn(·, batch) at params: d² memory, small models."""
    flat, unravel = ravel_pytree(params)
    H = jax.hessian(lambda f: loss_fn(unravel(f), batch))(flat)
    return jnp.linalg.eigvalsh(0.5 * (H + H.T))
