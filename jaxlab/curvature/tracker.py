"""Curvature tracking during training: the hook ``jaxlab.train`` calls every ``curvature.every`` steps.

    measure = make_tracker(config, loss_fn)          # loss_fn(params, batch) -> scalar
    record = measure(params, opt_state, lr, batch)   # {"sharpness": λ1, "eos_threshold": 2/lr, ...}

``measure`` is pure and jittable, and vmaps over runs (lr and params batched): it is traced inside the trainer's
jitted ``measure``. What it records is a static set of named quantities (``config.curvature.quantities``, names
of :data:`QUANTITIES`); the top-k Lanczos eigenpairs of the Hessian on the curvature set are computed once and
shared by every quantity that reads them.

Records (scalars per run):
  sharpness        λ1 (top Hessian eigenvalue), eos_threshold, sharpness_ratio = (λ1 or preconditioned λ1)/threshold,
                   sharpness_residual = ‖Hu − λ1u‖/λ1 (Ritz bound: how converged λ1 is)
  eig_gap          eig_2 … eig_k and eig_ratio = λ1/λ2 (close to 1: λ1 is poorly separated, its estimate less reliable)
  trace            hessian_trace, hessian_trace_stderr (Hutchinson)
  ntk              ntk_max: top eigenvalue of the empirical NTK Gram matrix J Jᵀ/N on the curvature set (= the
                   Gauss–Newton λ1 of a mean MSE, comparable to the sharpness)
  preconditioned   preconditioned_sharpness (Adam: top eigenvalue of P^-1/2 H P^-1/2), preconditioned_threshold
  alignment        align_* cosines of ∇λ1 with the parameters and the gradient
  layer_shares     share/<layer>: each parameter leaf's share of the top eigenvector's squared norm

Thresholds (the step size at which GD on a quadratic with curvature λ1 turns unstable):
  sgd 2/lr · momentum (heavy ball) (2+2β)/lr · Nesterov (2+2β)/((1+2β)·lr) · adam (2+2β1)/((1−β1)·lr) on the
  *preconditioned* sharpness (38/lr for β1 = 0.9) · lion: none recorded. β is read from the config (a sweep over
  hp["optim.momentum"] is not seen by the hook, which receives only lr). With weight decay folded into the
  gradient (sgd + l2/decoupled) the iteration's curvature is λ1 + λ on the decayed directions; the threshold
  recorded stays the loss Hessian's 2/lr, as in the EoS literature.

Warm start (``curvature.warm_start``, on by default): each measurement starts Lanczos from the previous one's
top-k eigenvectors (their sum, plus a small random component so a new direction can still enter), carried between
measurements in ``TrainState.curv`` (see ``measure.init_carry``; the trainer threads it through, and checkpoints
save it). Near the edge of stability λ1 and λ2 are nearly equal (λ1/λ2 ≈ 1.01), so a cold start needs ~20
iterations for 1e-4 relative accuracy; a warm start needs fewer (``python -m jaxlab.bench.curvature``), which is
what lets a tracker run fewer iterations. The first measurement starts from the key ``curvature.seed``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxlab.config import register_check, require, require_choice

CARRY = "_curvature_carry"  # the record key under which measure returns the next warm-start carry

# name -> (function(ctx) -> dict of scalars, needs Lanczos eigenvalues, needs eigenvectors)
QUANTITIES: dict[str, tuple[Callable[[dict], dict], bool, bool]] = {}


def register_quantity(name: str, eigs: bool = False, vectors: bool = False):
    """Decorator: ``fn(ctx) -> {key: scalar}``; ctx holds params, opt_state, lr, batch, matvec, loss, key,
    config and, when asked for, eigvals [k] (descending) and eigvecs (pytree, leading axis k)."""

    def deco(fn):
        QUANTITIES[name] = (fn, eigs, vectors)
        return fn

    return deco


def quantity_names(config) -> tuple[str, ...]:
    """curvature.quantities as a tuple of names ("sharpness,trace" or a tuple of strings)."""
    q = config.curvature.quantities
    if isinstance(q, str):
        q = [s.strip() for s in q.split(",")]
    return tuple(s for s in q if s)


# ------------------------------------------------------------------------------------------------ thresholds

def stability_threshold(optim_cfg, lr):
    """The optimiser's edge-of-stability threshold at learning rate lr, or None (lion: no known threshold)."""
    name = optim_cfg.name
    if name == "sgd":
        return 2.0 / lr
    if name == "momentum":
        b = optim_cfg.momentum
        return (2.0 + 2.0 * b) / ((1.0 + 2.0 * b) * lr) if optim_cfg.nesterov else (2.0 + 2.0 * b) / lr
    if name == "adam":
        from jaxlab.curvature.preconditioned import adam_threshold

        return adam_threshold(lr, optim_cfg.b1)
    return None


def _uses_preconditioner(optim_cfg) -> bool:
    return optim_cfg.name == "adam"


# ------------------------------------------------------------------------------------------------ quantities

@register_quantity("sharpness", eigs=True)
def _sharpness(ctx):
    # Ritz residual ‖Hu − λu‖/|λ| (Lanczos' own bound): small means λ1 converged in num_iters.
    return {"sharpness": ctx["eigvals"][0], "sharpness_residual": ctx["residuals"][0] / jnp.abs(ctx["eigvals"][0])}


@register_quantity("eig_gap", eigs=True)
def _eig_gap(ctx):
    ev = ctx["eigvals"]
    out = {f"eig_{i + 1}": ev[i] for i in range(1, ev.shape[0])}
    out["eig_ratio"] = ev[0] / ev[1]
    return out


@register_quantity("trace")
def _trace(ctx):
    from jaxlab.curvature.spectrum import hutchinson_trace

    cfg = ctx["config"].curvature
    mean, stderr = hutchinson_trace(ctx["matvec"], ctx["params"], jax.random.fold_in(ctx["key"], 1), cfg.trace_samples)
    return {"hessian_trace": mean, "hessian_trace_stderr": stderr}


@register_quantity("ntk")
def _ntk(ctx):
    from jaxlab.curvature.ntk import ntk_top_eigenvalues

    if ctx["apply_fn"] is None:
        raise ValueError("curvature quantity 'ntk' needs the model's apply_fn: make_tracker(config, loss_fn, apply_fn)")
    x = ctx["batch"][0]
    # scale 1/N: the eigenvalue of the Gauss–Newton matrix of a mean-over-examples MSE, comparable to λ1
    ev, _ = ntk_top_eigenvalues(ctx["apply_fn"], ctx["params"], x, jax.random.fold_in(ctx["key"], 2),
                                ctx["config"].curvature.num_iters, k=1, scale=1.0 / x.shape[0])
    return {"ntk_max": ev[0]}


@register_quantity("preconditioned")
def _preconditioned(ctx):
    from jaxlab.curvature.lanczos import lanczos
    from jaxlab.curvature.preconditioned import adam_preconditioner, preconditioned_matvec

    cfg = ctx["config"]
    if not _uses_preconditioner(cfg.optim):
        return {}
    P = adam_preconditioner(ctx["opt_state"], b2=cfg.optim.b2, eps=cfg.optim.eps)
    ev, _ = lanczos(preconditioned_matvec(ctx["matvec"], P), ctx["params"], jax.random.fold_in(ctx["key"], 3),
                    cfg.curvature.num_iters, k=1)
    return {"preconditioned_sharpness": ev[0]}


@register_quantity("alignment", eigs=True, vectors=True)
def _alignment(ctx):
    from jaxlab.curvature.alignment import alignment
    from jaxlab.optim.weight_decay import decay_mask

    u = jax.tree.map(lambda x: x[0], ctx["eigvecs"])
    mask = decay_mask(ctx["config"].optim.wd_mask)(ctx["params"])  # θ as weight decay moves it
    return {f"align_{k}": v for k, v in alignment(ctx["loss"], ctx["params"], u, theta_mask=mask).items()}


@register_quantity("layer_shares", eigs=True, vectors=True)
def _layer_shares(ctx):
    from jaxlab.curvature.alignment import layer_shares

    u = jax.tree.map(lambda x: x[0], ctx["eigvecs"])
    return {f"share/{path}": v for path, v in layer_shares(u).items()}


# ------------------------------------------------------------------------------------------------ the hook

def make_tracker(config, loss_fn: Callable, apply_fn: Callable | None = None) -> Callable:
    """loss_fn(params, batch) -> scalar; apply_fn(params, x) -> outputs (only the "ntk" quantity needs it; when
    omitted and loss_fn is a bound Trainer method, the trainer's apply is used).

    Returns measure(params, opt_state, lr, batch[, carry]) -> {name: scalar}, pure and jittable; batch = (x, y),
    the curvature set. All numbers that a sweep varies (params, lr) are arguments; the rest is static config.
    With ``curvature.warm_start`` (and quantities that run Lanczos), ``measure.init_carry(params)`` gives the
    initial carry (zeros like params: no previous eigenvectors) and measure also returns the next carry in
    ``out[CARRY]`` (the trainer pops it into ``TrainState.curv``).
    """
    cfg = config.curvature
    names = quantity_names(config)
    if _uses_preconditioner(config.optim) and "sharpness" in names and "preconditioned" not in names:
        names = names + ("preconditioned",)  # adam's threshold applies to the preconditioned sharpness
    if apply_fn is None and hasattr(getattr(loss_fn, "__self__", None), "apply"):
        apply_fn = loss_fn.__self__.apply
    need_eigs = any(QUANTITIES[n][1] for n in names)
    need_vecs = any(QUANTITIES[n][2] for n in names)
    k = max(cfg.k, 2 if "eig_gap" in names else 1)
    warm = bool(cfg.warm_start) and need_eigs

    def start_vector(key, params, carry):
        """The previous eigenvectors' sum plus 5% random; random alone at the first measurement (carry = 0)."""
        from jaxlab.curvature.hvp import tree_norm, tree_random_normal

        rnd = tree_random_normal(key, params)
        rn = tree_norm(rnd)
        rnd = jax.tree.map(lambda r: r / rn, rnd)
        n = tree_norm(carry)
        has = n > 0
        return jax.tree.map(lambda c, r: jnp.where(has, c / jnp.where(has, n, 1.0) + 0.05 * r, r), carry, rnd)

    def measure(params, opt_state, lr, batch, carry=None) -> dict:
        from jaxlab.curvature.hvp import make_hvp
        from jaxlab.curvature.lanczos import lanczos

        key = jax.random.PRNGKey(cfg.seed)
        # Unchunked: linearise the gradient once, so each Lanczos matvec is a tangent pass only (~2x cheaper).
        matvec = make_hvp(loss_fn, params, batch, chunk_size=cfg.chunk_size, linearize=not cfg.chunk_size)
        ctx = {"params": params, "opt_state": opt_state, "lr": lr, "batch": batch, "matvec": matvec, "key": key,
               "loss": lambda p: loss_fn(p, batch), "config": config, "apply_fn": apply_fn}
        if need_eigs:
            v0 = start_vector(key, params, carry) if warm and carry is not None else None
            ctx["eigvals"], ctx["eigvecs"], ctx["residuals"] = lanczos(
                matvec, params, key, cfg.num_iters, k=k, return_vectors=need_vecs or warm, v0=v0,
                return_residuals=True)
        out = {}
        for n in names:
            out.update(QUANTITIES[n][0](ctx))
        thr = stability_threshold(config.optim, lr)
        if thr is not None and "sharpness" in out:
            top = out.get("preconditioned_sharpness", out["sharpness"]) if _uses_preconditioner(config.optim) \
                else out["sharpness"]
            out["eos_threshold"] = thr
            out["sharpness_ratio"] = top / thr
        if warm and carry is not None:
            out[CARRY] = jax.tree.map(lambda v: jnp.sum(v, axis=0).astype(v.dtype), ctx["eigvecs"])
        return out

    if warm:
        measure.init_carry = lambda params: jax.tree.map(jnp.zeros_like, params)
    return measure


@register_check("curvature")
def check_curvature(config):
    c = config.curvature
    if c.every == 0:
        return
    names = quantity_names(config)
    require(len(names) > 0, "curvature.quantities", c.quantities, "must name at least one quantity")
    for n in names:
        require_choice("curvature.quantities", n, QUANTITIES)
    require(c.num_examples >= 0, "curvature.num_examples", c.num_examples, "must be >= 0 (0 = the evaluation set)")
    require(c.k >= 1, "curvature.k", c.k, "must be >= 1")
    k = max(c.k, 2 if "eig_gap" in names else 1)
    require(c.num_iters > 0, "curvature.num_iters", c.num_iters, "must be > 0")
    require(c.num_iters >= k, "curvature.num_iters", c.num_iters,
            f"must be >= the {k} eigenvalues asked for (curvature.k, and 2 for eig_gap)")
    require(c.chunk_size >= 0, "curvature.chunk_size", c.chunk_size, "must be >= 0 (0 = the whole set at once)")
    if "trace" in names:
        require(c.trace_samples > 0, "curvature.trace_samples", c.trace_samples, "must be > 0")
    if "preconditioned" in names:
        require(config.optim.name == "adam", "curvature.quantities", c.quantities,
                f"'preconditioned' needs optim.name='adam' (got {config.optim.name!r})")
