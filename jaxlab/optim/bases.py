"""Base methods by name: the update *direction* each produces before the learning rate and weight decay.

    sgd       u = g
    momentum  u = m,  m ← β·m + g   (PyTorch's heavy ball, no dampening; Nesterov: u = g + β·m)
    adam      u = m̂/(√v̂ + ε)       (bias-corrected)
    lion      u = sign(β₁·m + (1−β₁)·g),  m ← β₂·m + (1−β₂)·g   (Chen et al., 2023; β₁ = optim.b1,
              β₂ = optim.lion_b2 = 0.99 by default as in the paper and optax — its own field, because adam's
              b2 = 0.999 is a second-moment decay and a different quantity)

Zeroth-order variants (zo_sgd, zo_momentum, zo_adam) register in zeroth_order.py.

Each entry is ``fn(cfg, p) -> optax.GradientTransformation`` with ``p`` the resolved numbers (possibly traced:
β, ε may be swept) and ``cfg`` the optim ConfigDict for structure (nesterov). Beside each, its dynamics
(``register_dynamics``, jaxlab.optim.dynamics): the edge-of-stability threshold, the operator it bounds, and its
preconditioner. Lion declares none: its sign step is not differentiable, so no linear threshold applies.
"""
from __future__ import annotations

from typing import Callable

import optax

from jaxlab.optim.dynamics import Declared, register_dynamics
from jaxlab.optim.preconditioners import adam_preconditioner, frozen_adam
from jaxlab.registry import registrar

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {}


register_optimizer = registrar(OPTIMIZERS)


@register_optimizer("sgd")
def sgd(cfg, p):
    return optax.identity()


@register_dynamics("sgd")
def sgd_dynamics(cfg):
    return Declared(threshold=lambda n: 2.0 / n.lr)          # J = I − ηH flips at ηλ1 = 2


@register_optimizer("momentum")
def momentum(cfg, p):
    return optax.trace(decay=p.momentum, nesterov=bool(cfg.nesterov))


def momentum_threshold(numbers, nesterov: bool):
    """Heavy ball (2 + 2β)/η; Nesterov (2 + 2β)/((1 + 2β)η): where the mode's companion matrix has eigenvalue −1."""
    b = numbers.momentum
    return (2.0 + 2.0 * b) / ((1.0 + 2.0 * b) * numbers.lr) if nesterov else (2.0 + 2.0 * b) / numbers.lr


@register_dynamics("momentum")
def momentum_dynamics(cfg):
    nesterov = bool(cfg.nesterov)
    return Declared(threshold=lambda n: momentum_threshold(n, nesterov))


@register_optimizer("adam")
def adam(cfg, p):
    return optax.scale_by_adam(b1=p.b1, b2=p.b2, eps=p.eps)


def adam_threshold(numbers):
    """(2 + 2β1)/((1 − β1)η) on λ1(P⁻¹H): 38/η at β1 = 0.9 (Cohen et al., 2022)."""
    b1 = numbers.b1
    return (2.0 + 2.0 * b1) / ((1.0 - b1) * numbers.lr)


@register_dynamics("adam")
def adam_dynamics(cfg):
    return Declared(threshold=adam_threshold, operator="preconditioned",
                    preconditioner=lambda state, g, n: adam_preconditioner(state, g, n.b1, n.b2, n.eps),
                    frozen=lambda cfg, p, P: frozen_adam(p.b1, P))


@register_optimizer("lion")
def lion(cfg, p):
    return optax.scale_by_lion(b1=p.b1, b2=p.lion_b2)
