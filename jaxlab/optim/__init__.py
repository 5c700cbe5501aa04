"""Optimisers, weight-decay variants and learning-rate schedules, built from the ``optim`` config by name.

    tx = make_optimizer(config.optim, total_steps, hp)   # optax.GradientTransformation
    step = make_step(config.optim, total_steps, hp)      # the real step: update, the gradient it uses, frozen form
    declaration(config.optim)                            # its dynamics: threshold, operator, preconditioner
    lr = make_schedule(config.optim, total_steps, hp)    # step -> learning rate
    check_optim(config.optim, total_steps)               # ConfigError naming the bad key, before compute
    optim_metrics(params, opt_state, lr, config.optim, hp)  # per-group norms, effective lr, cautious fraction

``hp`` maps numeric field names (``"lr"``, ``"weight_decay"``, ``"b1"``, ``"schedule.warmup_steps"``, ...) to
possibly traced scalars, so a sweep over them is one compiled program. Schedule refinement from recorded gradient
norms: jaxlab.optim.refine. The studies that compare them are experiments (experiments/schedules.py,
experiments/weight_decay_variants.py).
Registries: OPTIMIZERS and their DYNAMICS (bases.py, dynamics.py), WEIGHT_DECAY (weight_decay.py), SCHEDULES and DECAY_SHAPES (schedules.py);
extend them with the ``register_*`` decorators. Zeroth-order optimisers (zo_sgd, zo_momentum, zo_adam) register
their two-point estimator as the Step's gradient (jaxlab.optim.zeroth_order).
"""
from jaxlab.optim.bases import OPTIMIZERS, register_optimizer
from jaxlab.optim.checks import check_optim
from jaxlab.optim.defaults import NUMERIC_FIELDS, default_optim_config, resolve
from jaxlab.optim.dynamics import DYNAMICS, Declared, Step, declaration, register_dynamics, register_gradient
from jaxlab.optim.ema import ema_params, with_param_ema
from jaxlab.optim.factory import make_optimizer, make_schedule, make_step
from jaxlab.optim.metrics import lion_linf_bound, optim_metrics
from jaxlab.optim.schedules import DECAY_SHAPES, SCHEDULES, register_schedule
from jaxlab.optim.zeroth_order import (ZEROTH_ORDER, is_zeroth_order, zo_gradient, zo_settings,
                                       zo_value_and_grad)
from jaxlab.optim.weight_decay import (WEIGHT_DECAY, add_cautious_decayed_weights, add_decayed_weights, decay_mask,
                                       register_weight_decay)

__all__ = [
    "make_optimizer", "make_schedule", "make_step", "check_optim", "declaration", "Declared", "Step", "DYNAMICS",
    "register_dynamics", "register_gradient", "default_optim_config", "resolve",
    "NUMERIC_FIELDS", "optim_metrics", "lion_linf_bound", "ema_params", "with_param_ema",
    "OPTIMIZERS", "WEIGHT_DECAY", "SCHEDULES", "DECAY_SHAPES", "register_optimizer", "register_weight_decay",
    "register_schedule", "add_decayed_weights", "add_cautious_decayed_weights", "decay_mask",
    "ZEROTH_ORDER", "is_zeroth_order", "zo_gradient", "zo_value_and_grad", "zo_settings",
]
