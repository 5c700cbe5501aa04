"""Curvature tracking during training: an explicit object the trainer calls every ``curvature.every`` steps.

    tracker = make_tracker(config, loss_fn, apply_fn=apply, decay_mask=mask, loss_kind="mse")
    carry = tracker.init(params)                                          # warm-start carry (or None)
    metrics, carry = tracker(params, opt_state, numbers, batch, carry)   # numbers: {"lr", "momentum", "b1", ...}

``numbers`` are the run's resolved optimiser numbers at this step (``jaxlab.optim.resolve`` with the scheduled
``lr``), possibly traced: every threshold and preconditioner reads β, ε and the learning rate from them, never
from the static config, so a sweep over ``optim.b1`` or ``optim.momentum`` records each run's own numbers.
The tracker is pure and jittable and vmaps over runs. What it records is a static set of named quantities
(``curvature.quantities``, keys of :data:`QUANTITIES`); the top-k Lanczos eigenpairs of the Hessian on the
curvature set are computed once and shared by every quantity that reads them.

Records (scalars per run):
  sharpness        λ1 (top Hessian eigenvalue), eos_threshold, sharpness_ratio = (λ1 or preconditioned λ1)/threshold,
                   sharpness_residual = ‖Hu − λ1u‖/λ1 (Ritz bound: how converged λ1 is)
  eig_gap          eig_2 … eig_k and eig_ratio = λ1/λ2 (close to 1: λ1 is poorly separated, its estimate less reliable)
  trace            hessian_trace, hessian_trace_stderr (Hutchinson)
  ntk              ntk_max: top eigenvalue of the empirical NTK Gram matrix J Jᵀ/n on the curvature set, n the number
                   of output rows the loss averages (examples, or tokens for [N, T, C] outputs): the Gauss–Newton λ1
                   of the mean MSE, comparable to the sharpness. MSE only (for cross-entropy it is not the GGN).
  preconditioned   preconditioned_sharpness (Adam: top eigenvalue of P^-1/2 H P^-1/2 with P = √v̂ + ε, v̂ = ν/(1 − β2ᵗ)
                   bias-corrected as in the update; NaN before the first update, when no second-moment estimate
                   exists yet)
  alignment        align_* cosines of ∇λ1 with the parameters and the gradient
  layer_shares     share/<layer>: each parameter leaf's share of the top eigenvector's squared norm
  sharpness_dim    sharpness_dim: Kaplan–Yorke dimension of the GD map from the top-k eigenvalues, the unmeasured
                   bulk at the smallest measured one (jaxlab.curvature.dimension; docs/science_notes.md)
  zo_stability     zo_sharpness_lower / zo_sharpness_upper: bounds on ZO-GD's effective sharpness 2/η*(H) from λ1
                   and the Hutchinson trace (n = optim.zo_directions; jaxlab.curvature.zo_stability), and their
                   ratios to 2/η
  zo_dense         zo_sharpness = 2/η*(H) from the dense spectrum's positive part (small models: the full Hessian is
                   formed), sharpness_dim_dense from the same spectrum

Thresholds (the step size at which GD on a quadratic with curvature λ1 turns unstable): sgd 2/η · heavy ball
(2+2β)/η · Nesterov (2+2β)/((1+2β)η) · adam (2+2β1)/((1−β1)η) on the *preconditioned* sharpness (38/η at β1 = 0.9)
· lion: none. With weight decay folded into the gradient the iteration's curvature is λ1 + λ on the decayed
directions; the threshold recorded stays the loss Hessian's, as in the EoS literature.

Warm start (``curvature.warm_start``): each measurement starts Lanczos from the previous one's top-k eigenvectors
(their sum, plus 5% random so a new direction can still enter), carried between measurements in
``TrainState.curv``. Near the edge of stability λ1/λ2 ≈ 1.01, so a cold start needs ~20 iterations for 1e-4
relative accuracy; a warm start needs fewer (``python -m jaxlab.bench.curvature``).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from jaxlab.config import require, require_choice
from jaxlab.curvature.hvp import make_hvp
from jaxlab.curvature.lanczos import lanczos
from jaxlab.curvature.spectrum import hutchinson_trace
from jaxlab.curvature.quantities import (QUANTITIES, Context, compared, dense_hessian_eigvalsh, quantity_names,
                                         stability_threshold, uses_preconditioner)
from jaxlab.tree import tree_random_normal, tree_vdot


def default_config() -> ml_collections.ConfigDict:
    """The ``curvature`` section."""
    return ml_collections.ConfigDict(dict(
        every=0,               # 0 = off; else measure every k steps (a multiple of train.log_every)
        # what to record, keys of jaxlab.curvature.quantities.QUANTITIES: sharpness | eig_gap | trace | ntk |
        # preconditioned | alignment | layer_shares | sharpness_dim | zo_stability | zo_dense (small models)
        # (adam adds preconditioned to sharpness by itself)
        quantities=("sharpness",),
        num_examples=0,        # curvature set: the first n evaluation examples; 0 = the whole evaluation set
        num_iters=20,          # Lanczos iterations (full reorthogonalisation) per measurement
        k=1,                   # top-k Hessian eigenvalues (eig_gap needs 2)
        chunk_size=0,          # examples per HVP pass (bounds activation memory); 0 = the whole set at once
        trace_samples=10,      # Hutchinson probe vectors for "trace"
        seed=0,                # the first Lanczos start vector's key (deterministic)
        warm_start=True,       # start each measurement's Lanczos from the previous top-k eigenvectors
    ))


# ------------------------------------------------------------------------------------------------ the tracker

@dataclasses.dataclass(frozen=True)
class Tracker:
    """Static structure of the measurement; every number a sweep varies arrives as an argument."""
    loss_fn: Callable                    # (params, batch) -> scalar
    quantities: tuple[str, ...]
    optimizer: str = "sgd"               # optim.name: which threshold and preconditioner apply
    nesterov: bool = False
    num_iters: int = 20
    k: int = 1
    chunk_size: int = 0
    trace_samples: int = 10
    seed: int = 0
    warm_start: bool = True
    zo_directions: int = 1               # optim.zo_directions: the n of the ZO stability quantities
    apply_fn: Callable | None = None     # (params, x) -> outputs; the "ntk" quantity needs it
    loss_kind: str = ""                  # loss.name: "ntk" describes the Gauss–Newton matrix of "mse" only
    decay_mask: Callable | None = None   # params -> bool pytree of decayed leaves ("alignment")
    data_shards: int = 1                 # pieces the curvature set is split into (chunked HVP: chunks within each)

    @property
    def needs_eigs(self) -> bool:
        return any(QUANTITIES[n].needs_eigs for n in self.quantities)

    @property
    def warm(self) -> bool:
        return self.warm_start and self.needs_eigs

    def init(self, params):
        """The first carry: zeros like params (no previous eigenvectors), or None without a warm start."""
        return jax.tree.map(jnp.zeros_like, params) if self.warm else None

    def _start_vector(self, key, params, carry):
        """The previous eigenvectors' sum plus 5% random; random alone at the first measurement (carry = 0)."""
        rnd = tree_random_normal(key, params)
        rn = jnp.sqrt(tree_vdot(rnd, rnd))
        rnd = jax.tree.map(lambda r: r / rn, rnd)
        n = jnp.sqrt(tree_vdot(carry, carry))
        has = n > 0
        return jax.tree.map(lambda c, r: jnp.where(has, c / jnp.where(has, n, 1.0) + 0.05 * r, r), carry, rnd)

    def __call__(self, params, opt_state, numbers: dict, batch, carry=None):
        """-> (metrics {name: scalar}, next carry). numbers: the resolved optimiser numbers, "lr" the current one."""
        key = jax.random.PRNGKey(self.seed)
        # Unchunked: linearise the gradient once, so each Lanczos matvec is a tangent pass only (~2x cheaper).
        matvec = make_hvp(self.loss_fn, params, batch, chunk_size=self.chunk_size, linearize=not self.chunk_size,
                          shards=self.data_shards)
        ctx = Context(self, params, opt_state, numbers, batch, matvec, key)
        if self.needs_eigs:
            need_vecs = self.warm or any(QUANTITIES[n].needs_vectors for n in self.quantities)
            v0 = self._start_vector(key, params, carry) if self.warm and carry is not None else None
            ev, vecs, res = lanczos(matvec, params, key, self.num_iters, k=self.k, return_vectors=need_vecs, v0=v0,
                                    return_residuals=True)
            ctx = ctx._replace(eigvals=ev, eigvecs=vecs, residuals=res)
        if any(QUANTITIES[n].needs_trace for n in self.quantities):  # once, however many quantities read it
            ctx = ctx._replace(trace=hutchinson_trace(matvec, params, jax.random.fold_in(key, 1), self.trace_samples))
        if any(QUANTITIES[n].needs_dense for n in self.quantities):
            ctx = ctx._replace(dense_eigvals=dense_hessian_eigvalsh(self.loss_fn, params, batch))
        out = {}
        for n in self.quantities:
            out.update(QUANTITIES[n].fn(ctx))
        thr = stability_threshold(self.optimizer, numbers, self.nesterov)
        top = compared(self.optimizer, out)
        if thr is not None and top is not None:
            out["eos_threshold"] = thr
            out["sharpness_ratio"] = top / thr
        if self.warm and carry is not None:
            carry = jax.tree.map(lambda v: jnp.sum(v, axis=0).astype(v.dtype), ctx.eigvecs)
        return out, carry


def make_tracker(config, loss_fn: Callable, *, apply_fn: Callable | None = None,
                 decay_mask: Callable | None = None, loss_kind: str | None = None, data_shards: int = 1) -> Tracker:
    """The tracker ``config.curvature`` describes for ``config.optim``'s optimiser (its name and Nesterov flag are
    structure; its numbers come at call time). loss_fn(params, batch) -> scalar; apply_fn(params, x) -> outputs
    (for "ntk"); decay_mask(params) -> bools (for "alignment": θ as weight decay moves it); loss_kind: the
    loss's name (default config.loss.name); data_shards: how many pieces a data-parallel mesh splits the curvature
    set into (a chunked HVP then chunks within each piece)."""
    cfg = config.curvature
    names = quantity_names(cfg)
    if uses_preconditioner(config.optim.name) and "sharpness" in names and "preconditioned" not in names:
        names = names + ("preconditioned",)  # adam's threshold applies to the preconditioned sharpness
    if "ntk" in names and apply_fn is None:
        raise ValueError("curvature quantity 'ntk' needs the model's apply_fn: make_tracker(..., apply_fn=...)")
    return Tracker(loss_fn=loss_fn, quantities=names, optimizer=config.optim.name, nesterov=bool(config.optim.nesterov),
                   num_iters=cfg.num_iters, k=max(cfg.k, 2 if "eig_gap" in names else 1), chunk_size=cfg.chunk_size,
                   trace_samples=cfg.trace_samples, seed=cfg.seed, warm_start=bool(cfg.warm_start), apply_fn=apply_fn,
                   zo_directions=int(config.optim.zo_directions), decay_mask=decay_mask,
                   loss_kind=config.loss.name if loss_kind is None else loss_kind, data_shards=data_shards)


def check(config):
    """Raise ConfigError naming the first bad ``curvature.*`` key (the section is read only when every > 0)."""
    c = config.curvature
    require(c.every >= 0, "curvature.every", c.every, "must be >= 0 (0 = off)")
    if c.every == 0:
        return
    log_every = config.train.log_every
    require(c.every % log_every == 0, "curvature.every", c.every, f"must be a multiple of train.log_every={log_every}")
    names = quantity_names(c)
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
    if any(QUANTITIES[n].needs_trace for n in names):
        require(c.trace_samples > 0, "curvature.trace_samples", c.trace_samples, "must be > 0")
    if "preconditioned" in names:
        require(config.optim.name == "adam", "curvature.quantities", c.quantities,
                f"'preconditioned' needs optim.name='adam' (got {config.optim.name!r})")
    if "ntk" in names:
        require(config.loss.name == "mse", "curvature.quantities", c.quantities,
                f"'ntk' is the Gauss–Newton λ1 of an MSE loss only (loss.name={config.loss.name!r})")
