"""Base methods by name: the update *direction* each produces before the learning rate and weight decay.

    sgd       u = g
    momentum  u = m,  m ← β·m + g   (PyTorch's heavy ball, no dampening; Nesterov: u = g + β·m)
    adam      u = m̂/(√v̂ + ε)       (bias-corrected)
    lion      u = sign(β₁·m + (1−β₁)·g),  m ← β₂·m + (1−β₂)·g   (Chen et al., 2023; β₁ = optim.b1,
              β₂ = optim.lion_b2 = 0.99 by default as in the paper and optax — its own field, because adam's
              b2 = 0.999 is a second-moment decay and a different quantity)

Zeroth-order variants (zo_sgd, zo_momentum, zo_adam) register in zeroth_order.py.

Each entry is ``fn(cfg, p) -> optax.GradientTransformation`` with ``p`` the resolved numbers (possibly traced:
β, ε may be swept) and ``cfg`` the optim ConfigDict for structure (nesterov).
"""
from __future__ import annotations

from typing import Callable

import optax

from jaxlab.registry import registrar

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {}


register_optimizer = registrar(OPTIMIZERS)


@register_optimizer("sgd")
def sgd(cfg, p):
    return optax.identity()


@register_optimizer("momentum")
def momentum(cfg, p):
    return optax.trace(decay=p["momentum"], nesterov=bool(cfg.nesterov))


@register_optimizer("adam")
def adam(cfg, p):
    return optax.scale_by_adam(b1=p["b1"], b2=p["b2"], eps=p["eps"])


@register_optimizer("lion")
def lion(cfg, p):
    return optax.scale_by_lion(b1=p["b1"], b2=p["lion_b2"])
