"""Curvature tracking during training: an explicit object the trainer calls every ``curvature.every`` steps.

    tracker = make_tracker(config, loss_fn, declared=optim.declaration(config.optim), apply_fn=apply)
    carry = tracker.init(params)                                            # warm-start carry (or None)
    metrics, carry = tracker(params, opt_state, numbers, batch, carry, t=step, step=optim.make_step(...))

``numbers`` are the run's resolved optimiser numbers at this step (``jaxlab.optim.resolve`` with the scheduled
``lr``), possibly traced: every threshold and preconditioner reads β, ε and the learning rate from them, never
from the static config. ``declared`` is what the optimiser says about its own dynamics (jaxlab.optim.dynamics:
its threshold, the operator it bounds, its preconditioner, its ZO mode map); the tracker knows no optimiser by
name. ``step`` is the real optimiser step, for the step-map quantities. ``t`` (the training step) is folded into
the curvature seed, so Hutchinson probes and Lanczos starts are fresh at every measurement.
The tracker is pure and jittable and vmaps over runs. What it records is a static set of named quantities
(``curvature.quantities``, keys of :data:`QUANTITIES`); the top-k Lanczos eigenpairs of the Hessian, the trace,
the gradient and the preconditioner are computed once and shared by every quantity that reads them.

Records (scalars per run):
  sharpness        λ1 (top Hessian eigenvalue), sharpness_residual = ‖Hu − λ1u‖/λ1 (Ritz bound); with a declared
                   threshold eos_threshold and sharpness_ratio = (the declared operator's λ1)/threshold
  eig_gap          eig_2 … eig_k and eig_ratio = λ1/λ2 (close to 1: λ1 is poorly separated, its estimate less reliable)
  trace            hessian_trace, hessian_trace_stderr (curvature.trace_estimator: Hutchinson, Hutch++ or XTrace)
  ntk              ntk_max: the Gauss–Newton λ1 of the (masked) mean MSE, top eigenvalue of W^½ J Jᵀ W^½ / n_valid
                   (W the valid-row mask, n_valid its count), comparable to the sharpness. MSE only. With tol > 0
                   also ntk_iters (its operator products)
  preconditioned   preconditioned_sharpness: λ1(P⁻¹H) with P the declared preconditioner of the next step
                   (Adam: (1 − β1^{t+1})(√v̂ + ε), jaxlab.optim.preconditioners)
  alignment        align_* cosines of ∇λ1 with the parameters and the gradient
  layer_shares     share/<layer>: each parameter leaf's share of the top eigenvector's squared norm
  step_flip, sharpness_dim, step_dense, sharpness_dim_dense, sharpness_dim_slq
                   the step map's flip multiplier and sharpness dimension, dense and from SLQ (step_quantities)
  zo_stability, zo_dense                   ZO mean-square boundary, bounds and dense value (zo_quantities)

Stopping (``curvature.tol``): 0 runs ``num_iters`` Lanczos steps; > 0 stops each Lanczos run once the top-k Ritz
residuals are ≤ tol·|λ| (jaxlab.curvature.krylov; num_iters is then the cap) and records ``lanczos_iters``, the
operator products spent. Warm start (``curvature.warm_start``): each measurement starts Lanczos from the previous
one's top-k Ritz vectors (their sum, plus 5% random so a new direction can still enter), carried between
measurements in ``TrainState.curv`` as {"vectors": [k, ...params]}.

One linearisation per measurement (``jaxlab.curvature.linearise``, unchunked, with the model's apply_fn): the
Hessian products, the NTK's J and Jᵀ, the trace probes and the preconditioner's gradient all read it; each Hessian
Lanczos step also yields J v for free, so the NTK's Lanczos starts from the Gauss–Newton Ritz vector on the
Hessian's Krylov space (near the edge of stability the two top spaces nearly coincide).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections

from jaxlab import losses
from jaxlab.config import ConfigError, require, require_choice
from jaxlab.curvature import step_quantities, zo_quantities  # noqa: F401  (register their quantities)
from jaxlab.curvature.block_krylov import block_lanczos
from jaxlab.curvature.hvp import make_hvp
from jaxlab.curvature.krylov import lanczos_adaptive
from jaxlab.curvature.linearise import linearise
from jaxlab.curvature.ntk import mse_row_weights, ntk_adaptive, ntk_start_from_krylov
from jaxlab.curvature.trace_estimators import hutchinson, hutchpp, xtrace
from jaxlab.curvature.quantities import QUANTITIES, Context, compared_key, dense_operator_eigvalsh, quantity_names
from jaxlab.optim.dynamics import Declared
from jaxlab.tree import tree_random_normal, tree_vdot


TRACE_ESTIMATORS = {"hutchinson": hutchinson, "hutchpp": hutchpp, "xtrace": xtrace}


def default_config() -> ml_collections.ConfigDict:
    """The ``curvature`` section."""
    return ml_collections.ConfigDict(dict(
        every=0,               # 0 = off; else measure every k steps (a multiple of train.log_every)
        at_start=True,         # also measure at step 0 (False with every = train.steps: the final state only)
        # what to record, keys of jaxlab.curvature.quantities.QUANTITIES: sharpness | eig_gap | trace | ntk |
        # preconditioned | alignment | layer_shares | step_flip | sharpness_dim | step_dense (small models) |
        # sharpness_dim_dense (small models) | sharpness_dim_slq |
        # zo_stability | zo_dense (small models). An optimiser whose threshold is on λ1(P⁻¹H) adds preconditioned
        # to sharpness by itself.
        quantities=("sharpness",),
        num_examples=0,        # curvature set: the first n evaluation examples; 0 = the whole evaluation set
        num_iters=20,          # Lanczos iterations (full reorthogonalisation) per measurement; the cap when tol > 0
        tol=0.0,               # > 0: stop Lanczos once the top-k Ritz residuals are <= tol·|λ| (records lanczos_iters)
        block_size=0,          # >= 2: block Lanczos on vmapped HVPs (pays on accelerators, not on a small CPU)
        k=1,                   # top-k Hessian eigenvalues (eig_gap needs 2); sharpness_dim: top-k singular values of
                               # the step map (>= 2: with one the dimension is decided only by a contracting map)
        chunk_size=0,          # examples per HVP pass (bounds activation memory); 0 = the whole set at once
        trace_samples=10,      # operator products for "trace" (and SLQ probes for zo_stability)
        trace_estimator="hutchinson",   # hutchinson | hutchpp | xtrace (jaxlab.curvature.trace_estimators)
        step_iters=40,         # Arnoldi / Lanczos steps on the step map (step_flip, sharpness_dim)
        dim_samples=4,         # sampled maps averaged by sharpness_dim[_dense|_slq] (ZO directions, minibatches)
        slq_iters=64,          # Lanczos steps per SLQ probe of sharpness_dim_slq (probes: trace_samples)
        seed=0,                # the curvature key, folded with the training step at each measurement
        warm_start=True,       # start each measurement's Lanczos from the previous top-k eigenvectors
        runs="auto",           # a sweep's vmapped runs: "loop" measures one run at a time, so each stops its Lanczos
                               # on its own residuals (fewer products where batching does not pay, as on a CPU);
                               # "batched" vmaps them (one loop that runs until the slowest stops); "auto": loop on
                               # a CPU when tol > 0, batched elsewhere
    ))


# ------------------------------------------------------------------------------------------------ the tracker

@dataclasses.dataclass(frozen=True)
class Tracker:
    """Static structure of the measurement; every number a sweep varies arrives as an argument."""
    loss_fn: Callable                    # (params, batch) -> scalar
    quantities: tuple[str, ...]
    declared: Declared = Declared()      # the optimiser's dynamics (jaxlab.optim.dynamics): threshold, operator, P
    num_iters: int = 20
    k: int = 1
    chunk_size: int = 0
    trace_samples: int = 10
    step_iters: int = 40
    dim_samples: int = 4
    slq_iters: int = 64
    seed: int = 0
    warm_start: bool = True
    zo_directions: int = 1               # optim.zo_directions: the n of the ZO stability quantities
    batch_size: int = 0                  # train.batch_size: sampled maps use minibatches of this size (0: full)
    apply_fn: Callable | None = None     # (params, x) -> outputs; the "ntk" quantity needs it
    loss_kind: str = ""                  # loss.name: "ntk" describes the Gauss–Newton matrix of "mse" only
    decay_mask: Callable | None = None   # params -> bool pytree of decayed leaves ("alignment")
    data_shards: int = 1                 # pieces the curvature set is split into (chunked HVP: chunks within each)
    tol: float = 0.0                     # Ritz residual tolerance (0: num_iters steps exactly)
    block_size: int = 0                  # >= 2: block Lanczos (vmapped HVPs)
    trace_estimator: str = "hutchinson"
    runs: str = "auto"                   # loop | batched | auto: how vmapped runs measure (loops_runs)
    out_loss: Callable | None = None     # (outputs, y) -> scalar with loss_fn(p, (x, y)) = out_loss(apply_fn(p, x), y)

    def needs(self, flag: str) -> bool:
        """Whether some recorded quantity has Quantity flag ``flag`` ("needs_eigs", "needs_trace", ...)."""
        return any(getattr(QUANTITIES[n], flag) for n in self.quantities)

    @property
    def needs_eigs(self) -> bool:
        return self.needs("needs_eigs")

    @property
    def needs_step(self) -> bool:
        return self.needs("needs_step")

    @property
    def warm(self) -> bool:
        return self.warm_start and self.needs_eigs

    def loops_runs(self) -> bool:
        """Whether vmapped runs measure one at a time (curvature.runs). Under vmap an adaptive while-loop runs
        until its slowest member stops, and on a CPU a vmapped batch of HVPs costs per vector what single ones
        do, so a loop of runs spends fewer products for the same numbers; an accelerator batches them well."""
        if self.runs == "auto":
            return self.tol > 0 and jax.default_backend() == "cpu"
        return self.runs == "loop"

    @property
    def joint(self) -> bool:
        """One linearisation serves the Hessian and the NTK (unchunked, with the model and the loss in outputs)."""
        return self.apply_fn is not None and self.out_loss is not None and not self.chunk_size

    def init(self, params):
        """The first carry: {"vectors": zeros [k, ...params]} (no previous Ritz vectors), or None without a warm
        start."""
        if not self.warm:
            return None
        return {"vectors": jax.tree.map(lambda p: jnp.zeros((self.k, *p.shape), p.dtype), params)}

    def _start_vector(self, key, like, prev):
        """The previous vectors' sum (prev: leading axis j, or like ``like``) normalised, plus 5% random; random
        alone at the first measurement (prev = 0)."""
        prev = jax.tree.map(lambda c, p: c.reshape(-1, *p.shape).sum(0), prev, like)
        rnd = tree_random_normal(key, like)
        rn = jnp.sqrt(tree_vdot(rnd, rnd))
        rnd = jax.tree.map(lambda r: r / rn, rnd)
        n = jnp.sqrt(tree_vdot(prev, prev))
        has = n > 0
        return jax.tree.map(lambda c, r: jnp.where(has, c / jnp.where(has, n, 1.0) + 0.05 * r, r), prev, rnd)

    def __call__(self, params, opt_state, numbers: dict, batch, carry=None, t=0, step=None):
        """-> (metrics {name: scalar}, next carry). numbers: the resolved optimiser numbers, "lr" the current one;
        t: the training step (a fresh key per measurement); step: the optimiser's real step (jaxlab.optim
        make_step), needed by the step-map quantities."""
        if step is None and self.needs_step:
            raise ValueError(f"curvature quantities {self.quantities} read the optimiser's step: pass step=")
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), t)
        lin = None
        if self.joint:   # one linearisation: H v and J v from one tangent pass, the gradient for free
            lin = linearise(self.apply_fn, self.out_loss, params, batch)
            matvec = lin.hvp
        else:            # unchunked: the gradient linearised once, so each matvec is a tangent pass only
            matvec = make_hvp(self.loss_fn, params, batch, chunk_size=self.chunk_size,
                              linearize=not self.chunk_size, shards=self.data_shards)
        ctx = Context(self, params, opt_state, numbers, batch, matvec, key, step=step)
        d = self.declared
        if d.preconditioner is not None and (self.needs("needs_precond") or self.needs_step
                                             or d.operator == "zo_mean_square"):
            loss = lambda p: self.loss_fn(p, batch)  # noqa: E731
            if step is not None:
                grads = step.gradient(loss, params, jax.random.fold_in(key, 4))
            else:
                grads = lin.grad if lin is not None else jax.grad(loss)(params)
            ctx = ctx._replace(grads=grads, precond=d.preconditioner(opt_state, grads, numbers))
        out = {}
        if self.needs_eigs:
            ctx = self._hessian(ctx, lin, carry)
            if self.tol > 0 or self.block_size > 1:
                out["lanczos_iters"] = ctx.krylov.num_iters
        if self.needs("needs_ntk") and lin is not None and self.tol > 0:
            ctx = ctx._replace(ntk=self._ntk(ctx, lin))
        if self.needs("needs_trace"):  # once, however many quantities read it
            est = TRACE_ESTIMATORS[self.trace_estimator]
            ctx = ctx._replace(trace=est(matvec, params, jax.random.fold_in(key, 1), self.trace_samples))
        if self.needs("needs_dense"):
            ctx = ctx._replace(dense_eigvals=dense_operator_eigvalsh(ctx))
        for n in self.quantities:
            out.update(QUANTITIES[n].fn(ctx))
        top = out.get(compared_key(d.operator))
        if d.threshold is not None and top is not None:
            thr = d.threshold(numbers)
            out["eos_threshold"] = thr
            out["sharpness_ratio"] = top / thr
        if self.warm and carry is not None:
            carry = {"vectors": jax.tree.map(lambda v, c: v.astype(c.dtype), ctx.eigvecs, carry["vectors"])}
        return out, carry

    def _hessian(self, ctx: Context, lin, carry) -> Context:
        """The shared top-k Lanczos of the Hessian (warm from the carried Ritz vectors). With the NTK to measure
        too, each step also records J v (free from the joint linearisation) for the NTK's start vector."""
        need_vecs = self.warm or self.needs("needs_vectors")
        prev = carry["vectors"] if self.warm and carry is not None else None
        key = ctx.key
        if self.block_size > 1:
            v0 = None if prev is None else jax.tree.map(lambda a: a[: self.block_size], prev)
            res = block_lanczos(ctx.matvec, ctx.params, key, block_size=self.block_size, k=self.k, tol=self.tol,
                                max_iters=self.num_iters, v0=v0, return_vectors=need_vecs)
        else:
            v0 = None if prev is None else self._start_vector(key, ctx.params, prev)
            aux = lin is not None and self.tol > 0 and self.needs("needs_ntk")
            res = lanczos_adaptive(lin.hvp_jvp if aux else ctx.matvec, ctx.params, key, k=self.k, tol=self.tol,
                                   max_iters=self.num_iters, min_iters=self.k + 2 if self.tol > 0 else 1, v0=v0,
                                   return_vectors=need_vecs, has_aux=aux)
        return ctx._replace(eigvals=res.eigvals, eigvecs=res.eigvecs, residuals=res.residuals, krylov=res)

    def _ntk(self, ctx: Context, lin):
        """(NTK λ1, products) of the masked MSE's Gauss–Newton matrix (``ntk`` quantity) from the shared
        linearisation: Lanczos in output space, started from the Gauss–Newton Ritz vector on the Hessian's Krylov
        space (J v_i recorded by :meth:`_hessian`) plus 5% random, stopped by the same tolerance."""
        if self.loss_kind != "mse":
            raise ValueError(f"curvature quantity 'ntk' describes an MSE loss, not {self.loss_kind!r}")
        w, scale = mse_row_weights(lin.outputs.shape, ctx.batch[1], lin.outputs.dtype)
        key = jax.random.fold_in(ctx.key, 2)
        v0 = None
        if ctx.krylov is not None and ctx.krylov.aux is not None:
            e0, _ = ntk_start_from_krylov(ctx.krylov.aux, w, scale)
            v0 = self._start_vector(key, lin.outputs, e0)
        res = ntk_adaptive(lin.jvp, lin.vjp, lin.outputs, key, row_weights=w, scale=scale, tol=self.tol,
                           max_iters=self.num_iters, v0=v0)
        return res.eigvals[0], res.num_iters


def make_tracker(config, loss_fn: Callable, *, declared: Declared | None = None, apply_fn: Callable | None = None,
                 decay_mask: Callable | None = None, loss_kind: str | None = None, data_shards: int = 1,
                 out_loss: Callable | None = None) -> Tracker:
    """The tracker ``config.curvature`` describes. loss_fn(params, batch) -> scalar; declared: the optimiser's
    dynamics (``jaxlab.optim.declaration(config.optim)``; None: nothing declared, so no threshold); apply_fn(params,
    x) -> outputs (for "ntk"); decay_mask(params) -> bools (for "alignment": θ as weight decay moves it);
    loss_kind: the loss's name (default config.loss.name); data_shards: how many pieces a data-parallel mesh
    splits the curvature set into (a chunked HVP then chunks within each piece). out_loss(outputs, y) -> scalar
    with loss_fn(p, (x, y)) = out_loss(apply_fn(p, x), y), the trainer's loss (default, when apply_fn is given:
    config.loss's, jaxlab.losses, with its z_loss): with it the Hessian and the NTK share one linearisation."""
    cfg = config.curvature
    declared = Declared() if declared is None else declared
    names = quantity_names(cfg)
    if declared.operator == "preconditioned" and "sharpness" in names and "preconditioned" not in names:
        names = names + ("preconditioned",)  # the declared threshold applies to the preconditioned sharpness
    if "ntk" in names and apply_fn is None:
        raise ValueError("curvature quantity 'ntk' needs the model's apply_fn: make_tracker(..., apply_fn=...)")
    problem = inapplicable(names, declared)
    if problem:
        raise ConfigError(f"config.curvature.quantities={cfg.quantities!r}: {problem} (optim.name="
                          f"{config.optim.name!r})")
    if out_loss is None and apply_fn is not None:
        out_loss = functools.partial(losses.get_loss(config.loss.name), z_loss=config.loss.z_loss)
    return Tracker(loss_fn=loss_fn, quantities=names, declared=declared, num_iters=cfg.num_iters,
                   k=max(cfg.k, 2 if "eig_gap" in names else 1), chunk_size=cfg.chunk_size,
                   trace_samples=cfg.trace_samples, step_iters=cfg.step_iters, dim_samples=cfg.dim_samples,
                   slq_iters=cfg.slq_iters,
                   seed=cfg.seed, warm_start=bool(cfg.warm_start), apply_fn=apply_fn,
                   zo_directions=int(config.optim.zo_directions), batch_size=int(config.train.batch_size),
                   decay_mask=decay_mask, loss_kind=config.loss.name if loss_kind is None else loss_kind,
                   data_shards=data_shards, tol=float(cfg.tol), block_size=int(cfg.block_size),
                   trace_estimator=cfg.trace_estimator, out_loss=out_loss, runs=cfg.runs)


def inapplicable(names, declared: Declared) -> str:
    """Why a quantity in ``names`` cannot be measured for an optimiser declaring ``declared`` ("" if all can)."""
    if "preconditioned" in names and declared.preconditioner is None:
        return "'preconditioned' needs an optimiser that declares a preconditioner"
    if ("zo_stability" in names or "zo_dense" in names) and declared.mode_map is None:
        return "'zo_stability'/'zo_dense' need a zeroth-order optimiser's mode map"
    return ""


def check(config, declared: Declared | None = None):
    """Raise ConfigError naming the first bad ``curvature.*`` key (the section is read only when every > 0).
    declared: the optimiser's dynamics (what it declares decides which quantities apply)."""
    c = config.curvature
    declared = Declared() if declared is None else declared
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
    if "sharpness_dim" in names:
        require(c.k >= 2, "curvature.k", c.k, "must be >= 2 for sharpness_dim (from one singular value the "
                "dimension is decided only when the map contracts every direction)")
    k = max(c.k, 2 if "eig_gap" in names else 1)
    require(c.num_iters > 0, "curvature.num_iters", c.num_iters, "must be > 0")
    require(c.num_iters >= k, "curvature.num_iters", c.num_iters,
            f"must be >= the {k} eigenvalues asked for (curvature.k, and 2 for eig_gap)")
    require(c.step_iters >= k, "curvature.step_iters", c.step_iters, f"must be >= curvature.k={k}")
    require(c.dim_samples >= 1, "curvature.dim_samples", c.dim_samples, "must be >= 1")
    require(c.slq_iters >= 1, "curvature.slq_iters", c.slq_iters, "must be >= 1")
    require(c.chunk_size >= 0, "curvature.chunk_size", c.chunk_size, "must be >= 0 (0 = the whole set at once)")
    require(c.tol >= 0, "curvature.tol", c.tol, "must be >= 0 (0 = num_iters Lanczos steps exactly)")
    require(c.block_size >= 0, "curvature.block_size", c.block_size, "must be >= 0 (0 or 1 = single-vector Lanczos)")
    require_choice("curvature.trace_estimator", c.trace_estimator, TRACE_ESTIMATORS)
    require_choice("curvature.runs", c.runs, ("auto", "loop", "batched"))
    if any(QUANTITIES[n].needs_trace for n in names) or "zo_stability" in names:
        least = {"hutchinson": 2, "hutchpp": 6, "xtrace": 4}[c.trace_estimator]
        require(c.trace_samples >= least, "curvature.trace_samples", c.trace_samples,
                f"must be >= {least} for trace_estimator={c.trace_estimator!r}")
    problem = inapplicable(names, declared)
    require(not problem, "curvature.quantities", c.quantities, f"{problem} (optim.name={config.optim.name!r})")
    if "ntk" in names:
        require(config.loss.name == "mse", "curvature.quantities", c.quantities,
                f"'ntk' is the Gauss–Newton λ1 of an MSE loss only (loss.name={config.loss.name!r})")
