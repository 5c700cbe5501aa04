"""An exponential moving average of the parameters, kept in the optimiser state.

    tx = with_param_ema(tx, decay)          # updates unchanged; state also holds ema ← d·ema + (1−d)·θ_new
    averaged = ema_params(opt_state)        # None when the optimiser keeps no EMA

The average starts at the initial parameters, so it needs no bias correction. Keeping it in the optimiser state
means it is checkpointed, frozen on divergence and vmapped with everything else.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax


class ParamEmaState(NamedTuple):
    inner: Any
    ema: Any        # same structure as params


def with_param_ema(tx: optax.GradientTransformation, decay) -> optax.GradientTransformation:
    """Wrap ``tx``; decay may be traced (a sweep over it is one program)."""

    def init(params):
        return ParamEmaState(inner=tx.init(params), ema=jax.tree.map(lambda p: p, params))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        updates, inner = tx.update(updates, state.inner, params)
        ema = jax.tree.map(lambda e, p, u: (decay * e + (1 - decay) * (p + u)).astype(e.dtype),
                           state.ema, params, updates)
        return updates, ParamEmaState(inner=inner, ema=ema)

    return optax.GradientTransformation(init, update)


def ema_params(opt_state):
    """The EMA parameters held by a state built with :func:`with_param_ema` (the outermost wrapper), else None."""
    return opt_state.ema if isinstance(opt_state, ParamEmaState) else None
