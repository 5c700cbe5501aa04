"""What an optimiser's step does near a point, declared next to the optimiser; curvature reads it, never a name.

    declared = declaration(config.optim)             # Declared: static (strings, functions of the numbers)
    declared.threshold(numbers)                      # closed-form edge-of-stability threshold, or None
    declared.operator                                # the operator that threshold is a bound on (below)
    step = make_step(config.optim, total_steps, n)   # Step (factory.py): the real update, its gradient, a frozen form

Each optimiser registers a :class:`Declared` with ``@register_dynamics(name)`` beside its transform (bases.py,
zeroth_order.py). Everything numeric is a function of ``numbers`` (the run's :class:`jaxlab.optim.numbers.Numbers`
with ``lr`` the *current* scheduled learning rate), so a sweep over β or ε records each run's own threshold.

Operators (what ``threshold`` is compared against; ``jaxlab.curvature`` measures each):

    "hessian"          λ1(H)                             GD 2/η, heavy ball (2+2β)/η, Nesterov (2+2β)/((1+2β)η)
    "preconditioned"   λ1(P⁻¹H), P = ``preconditioner``   Adam (2+2β1)/((1−β1)η) = 38/η at β1 = 0.9
    "zo_mean_square"   2/η*, η* the mean-square critical step of the ZO method's per-mode recurrence ``mode_map``

An optimiser with no formula still has a stability measure: the flip multiplier of its real step's Jacobian
(``jaxlab.curvature.step_map``), which reaches −1 at its edge of stability whatever the method.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import optax

from jaxlab.registry import registrar

OPERATORS = ("hessian", "preconditioned", "zo_mean_square")


class Declared(NamedTuple):
    """An optimiser's dynamics near a point. All fields optional: an optimiser with none still has a step map."""
    threshold: Callable[[dict], Any] | None = None
    # numbers -> the value of the operator's top eigenvalue (or of 2/η* for zo_mean_square) at which the step
    # loses linear (or mean-square) stability
    operator: str = "hessian"
    preconditioner: Callable[[Any, Any, dict], Any] | None = None
    # (opt_state, grads, numbers) -> P, a positive pytree like params: the diagonal the *next* step divides by,
    # with every scalar factor of the step folded in (so the threshold holds on λ1(P⁻¹H) as declared)
    frozen: Callable[[Any, dict, Any], optax.GradientTransformation] | None = None
    # (cfg, p, P) -> the direction transform with its preconditioner held at P (same state structure as the real
    # one): the step whose Jacobian the closed-form threshold describes
    zeroth_order: bool = False         # the step uses a two-point estimate (gradient below), not ∇L
    mode_map: Callable[[Any, dict], tuple] | None = None
    # ZO: (x = ημ, numbers) -> (B [k, k], c [k]): the per-mode mean recurrence and where the estimator's noise
    # enters (jaxlab.curvature.zo_stability); μ an eigenvalue of the operator (H, or P⁻¹H with a preconditioner)


DYNAMICS: dict[str, Callable[[Any], Declared]] = {}   # name -> fn(cfg) -> Declared (cfg for structure: nesterov)
register_dynamics = registrar(DYNAMICS)


def declaration(cfg, name: str | None = None) -> Declared:
    """The declaration of ``cfg``'s optimiser (or of optimiser ``name`` with cfg's structure, e.g. a sweep axis);
    an unregistered optimiser declares nothing (no threshold: its step map still measures it)."""
    fn = DYNAMICS.get(cfg.name if name is None else name)
    return fn(cfg) if fn is not None else Declared()


class Step(NamedTuple):
    """One real optimiser step as functions, built per call from the (possibly traced) numbers.

    update(grads, opt_state, params) -> (updates, opt_state): the optax transform's update.
    gradient(loss_fn, params, key) -> grads: ∇loss_fn, or the zeroth-order estimate the optimiser uses
      (loss_fn: params -> scalar; key: the estimator's directions).
    frozen_update(P) -> an update function with the preconditioner held at P, or None without one.
    """
    update: Callable
    gradient: Callable
    frozen_update: Callable[[Any], Callable] | None = None


def exact_gradient(loss_fn, params, key):
    del key
    return jax.grad(loss_fn)(params)


GRADIENTS: dict[str, Callable] = {}    # name -> fn(cfg, p) -> gradient(loss_fn, params, key) (ZO estimators)
register_gradient = registrar(GRADIENTS)
