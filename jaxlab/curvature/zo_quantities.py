"""Tracker quantities of zeroth-order mean-square stability (jaxlab.curvature.zo_stability), for any ZO optimiser
that declares its per-mode recurrence (``declared.mode_map``, jaxlab.optim.zo_modes).

Records:
  zo_stability   zo_sharpness_lower / zo_sharpness_upper: bounds on the effective sharpness 2/η* from the top
                 eigenvalue and the trace of the positive part of the operator (H, or P^-1/2 H P^-1/2 with a
                 declared preconditioner), their ratios to 2/η (zo_ratio_lower / zo_ratio_upper = η/η*'s bounds),
                 zo_operator_max, zo_trace_positive ± zo_trace_positive_stderr (SLQ), and with a preconditioner
                 zo_commutator = ‖PH − HP‖_F/‖PH‖_F (near 0: the commuting-P analysis applies)
  zo_dense       zo_sharpness = 2/η* from the operator's dense spectrum (small models)

The dense value and the bounds both leave out the negative eigenvalues (as GD's 2/λ1 does), so with the exact
positive trace the bounds contain the dense value by construction; the recorded ones carry SLQ's error.
"""
from __future__ import annotations

import jax

from jaxlab.curvature.quantities import Context, operator_matvec, register_quantity, top_eigenvalue
from jaxlab.curvature.spectrum import positive_trace
from jaxlab.curvature.zo_stability import commutator_ratio, critical_lr, critical_lr_bounds


@register_quantity("zo_stability")
def _zo_stability(ctx: Context) -> dict:
    t = ctx.tracker
    mv = operator_matvec(ctx)
    lam = top_eigenvalue(ctx, mv, jax.random.fold_in(ctx.key, 8))
    tr, se = positive_trace(mv, ctx.params, jax.random.fold_in(ctx.key, 9), t.num_iters, t.trace_samples)
    lo, hi = critical_lr_bounds(lam[0], tr, t.zo_directions, t.declared.mode_map, ctx.numbers)
    lr = ctx.numbers.lr
    out = {"zo_sharpness_lower": 2.0 / hi, "zo_sharpness_upper": 2.0 / lo, "zo_ratio_lower": lr / hi,
           "zo_ratio_upper": lr / lo, "zo_operator_max": lam[0], "zo_trace_positive": tr,
           "zo_trace_positive_stderr": se}
    if ctx.precond is not None:
        out["zo_commutator"] = commutator_ratio(ctx.matvec, ctx.precond, ctx.params, jax.random.fold_in(ctx.key, 10),
                                                t.trace_samples)
    return out


@register_quantity("zo_dense", needs_dense=True)
def _zo_dense(ctx: Context) -> dict:
    t = ctx.tracker
    return {"zo_sharpness": 2.0 / critical_lr(ctx.dense_eigvals, t.zo_directions, t.declared.mode_map, ctx.numbers)}
