"""Optimisers, weight-decay variants and learning-rate schedules, built from the ``optim`` config by name.

    hp = traced_numbers(config.optim)                    # the traced numbers of a run (lr, weight_decay, swept ones)
    n = resolve(config.optim, hp)                        # Numbers: every number of the run, by field name, once
    tx = make_optimizer(config.optim, total_steps, n)    # optax.GradientTransformation
    step = make_step(config.optim, total_steps, n)       # the real step: update, the gradient it uses, frozen form
    declaration(config.optim)                            # its dynamics: threshold, operator, preconditioner
    lr = make_schedule(config.optim, total_steps, n)     # step -> learning rate
    check_optim(config.optim, total_steps)               # ConfigError naming the bad key, before compute
    optim_metrics(params, opt_state, lr, config.optim, n)  # per-group norms, effective lr, cautious fraction

:class:`Numbers` holds possibly traced scalars (``n.lr``, ``n.b1``, ``n.schedule.warmup_steps``, ...), so a sweep
over them is one compiled program (jaxlab.optim.numbers). Schedule refinement from recorded gradient norms:
jaxlab.optim.refine. The studies that compare them are experiments (experiments/schedules.py,
experiments/weight_decay_variants.py).
Registries: OPTIMIZERS and their DYNAMICS (bases.py, dynamics.py), WEIGHT_DECAY (weight_decay.py), SCHEDULES and
DECAY_SHAPES (schedules.py); extend them with the ``register_*`` decorators. Zeroth-order optimisers (zo_sgd,
zo_momentum, zo_adam) register their two-point estimator as the Step's gradient (jaxlab.optim.zeroth_order).
"""
from jaxlab.optim.bases import OPTIMIZERS, register_optimizer
from jaxlab.optim.checks import check_optim
from jaxlab.optim.defaults import default_optim_config
from jaxlab.optim.dynamics import DYNAMICS, Declared, Step, declaration, register_dynamics, register_gradient
from jaxlab.optim.ema import ema_params, with_param_ema
from jaxlab.optim.factory import make_optimizer, make_schedule, make_step
from jaxlab.optim.metrics import lion_linf_bound, optim_metrics
from jaxlab.optim.numbers import FIELDS, Numbers, ScheduleNumbers, resolve, traced_numbers
from jaxlab.optim.schedules import DECAY_SHAPES, SCHEDULES, register_schedule
from jaxlab.optim.zeroth_order import ZEROTH_ORDER, is_zeroth_order, zo_gradient, zo_value_and_grad
from jaxlab.optim.weight_decay import WEIGHT_DECAY, add_cautious_decayed_weights, decay_mask, register_weight_decay

__all__ = [
    "make_optimizer", "make_schedule", "make_step", "check_optim", "declaration", "Declared", "Step", "DYNAMICS",
    "register_dynamics", "register_gradient", "default_optim_config", "resolve", "traced_numbers", "Numbers",
    "ScheduleNumbers", "FIELDS", "optim_metrics", "lion_linf_bound", "ema_params", "with_param_ema",
    "OPTIMIZERS", "WEIGHT_DECAY", "SCHEDULES", "DECAY_SHAPES", "register_optimizer", "register_weight_decay",
    "register_schedule", "add_cautious_decayed_weights", "decay_mask",
    "ZEROTH_ORDER", "is_zeroth_order", "zo_gradient", "zo_value_and_grad",
]
