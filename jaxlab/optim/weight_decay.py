"""Weight decay as optax transforms: masks by parameter path, and the variants that place the decay in the chain.

An optimiser here is ``clip → [L2] → direction → [decay] → −lr_t → [independent decay]``, where the
*direction* ``u`` is the base method's update before the learning rate (the gradient for SGD, the momentum
buffer, Adam's ``m̂/(√v̂ + ε)``, Lion's sign). Per step, with ``s_t = lr_t/lr`` the schedule multiplier:

    none         θ ← θ − lr_t·u
    l2           θ ← θ − lr_t·u(g + λθ)                 (decay enters the momentum / preconditioner)
    decoupled    θ ← θ − lr_t·(u + λθ)                  (AdamW as optax writes it; Lion's decay)
    independent  θ ← θ − lr_t·u − s_t·λθ                (Loshchilov & Hutter's SGDW/AdamW: λ not scaled by lr)
    cautious     θ ← θ − lr_t·(u + λ·1[u⊙θ ≥ 0]⊙θ)      (Chen et al., 2025: decay only where the update agrees)

For SGD, ``l2`` and ``decoupled`` are the same update, and ``independent`` with ``λ·lr`` is too.
Only the leaves the mask selects are decayed (default: not biases or normalisation scales). The decay is
``optax.add_decayed_weights`` (its mask, and its schedule for ``independent``); ``cautious`` needs the incoming
update's sign, so it is a transform of its own here, masked by ``optax.masked`` the same way.
"""
from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab.config import ConfigError
from jaxlab.tree import leaf_paths, path_str
from jaxlab.registry import registrar

PyTree = Any
MaskFn = Callable[[PyTree], PyTree]   # params -> same structure of Python bools (static)

# ---------------------------------------------------------------------------------------------------- masks

NO_DECAY_NAMES = ("bias", "scale")    # flax names of biases and LayerNorm/RMSNorm scales


def _default_rule(path: str, leaf) -> bool:
    return path.rsplit("/", 1)[-1] not in NO_DECAY_NAMES and jnp.ndim(leaf) >= 2


def decay_mask(spec) -> MaskFn:
    """wd_mask spec -> fn(params) -> pytree of bools (True = decayed).

    "default": every leaf of rank ≥ 2 not named bias/scale (kernels, embeddings); "all"; "none";
    any other string, or a tuple of them: regexes; a leaf decays if one matches (re.search) its path,
    e.g. 'block_0/mlp_in/kernel'.
    """
    if spec == "default":
        rule = _default_rule
    elif spec == "all":
        rule = lambda path, leaf: True  # noqa: E731
    elif spec == "none":
        rule = lambda path, leaf: False  # noqa: E731
    else:
        patterns = [re.compile(p) for p in ((spec,) if isinstance(spec, str) else spec)]
        rule = lambda path, leaf: any(p.search(path) for p in patterns)  # noqa: E731

    def mask_fn(params):
        mask = jax.tree_util.tree_map_with_path(lambda p, x: rule(path_str(p), x), params)
        if spec not in ("default", "all", "none") and not any(jax.tree.leaves(mask)):
            # A mistyped pattern would otherwise silently switch weight decay off.
            paths = jax.tree.leaves(leaf_paths(params))
            raise ConfigError(f"config.optim.wd_mask={spec!r}: matches no parameter; paths are {paths}")
        return mask

    return mask_fn


# ---------------------------------------------------------------------------------------------------- transforms

class CautiousDecayState(NamedTuple):
    decayed_fraction: jax.Array  # float32 []: fraction of masked coordinates decayed by the last update


def add_cautious_decayed_weights(rate, mask_fn: MaskFn | None = None) -> optax.GradientTransformation:
    """updates + rate·1[u⊙θ ≥ 0]⊙θ on the masked leaves (u: the incoming direction, before −lr); ``rate`` a (traced)
    scalar. The mask is ``optax.masked``'s, as for ``optax.add_decayed_weights``.

    The state records which fraction of the masked coordinates was decayed (a metric of the method).
    """

    def init(params):
        del params
        return CautiousDecayState(decayed_fraction=jnp.zeros([], jnp.float32))

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        counts = []

        def decay(u, p):
            agree = (u * p >= 0)
            counts.append((jnp.sum(agree, dtype=jnp.float32), agree.size))
            return (u + rate * jnp.where(agree, p, 0)).astype(u.dtype)

        updates = jax.tree.map(decay, updates, params)
        total = sum(n for _, n in counts)
        frac = sum(c for c, _ in counts) / total if total else jnp.zeros([], jnp.float32)
        return updates, CautiousDecayState(decayed_fraction=jnp.asarray(frac, jnp.float32))

    tx = optax.GradientTransformation(init, update)
    return tx if mask_fn is None else optax.masked(tx, mask_fn)


# ---------------------------------------------------------------------------------------------------- variants

# name -> fn(direction, lr, multiplier, weight_decay, mask_fn) -> GradientTransformation, where
# lr: step -> lr_t, multiplier: step -> s_t = lr_t/lr. The chain's input is the (clipped) gradient.
WEIGHT_DECAY: dict[str, Callable[..., optax.GradientTransformation]] = {}


register_weight_decay = registrar(WEIGHT_DECAY)


@register_weight_decay("none")
def _none(direction, lr, multiplier, wd, mask_fn):
    return optax.chain(direction, optax.scale_by_learning_rate(lr))


@register_weight_decay("l2")
def _l2(direction, lr, multiplier, wd, mask_fn):
    return optax.chain(optax.add_decayed_weights(wd, mask_fn), direction, optax.scale_by_learning_rate(lr))


@register_weight_decay("decoupled")
def _decoupled(direction, lr, multiplier, wd, mask_fn):
    return optax.chain(direction, optax.add_decayed_weights(wd, mask_fn), optax.scale_by_learning_rate(lr))


@register_weight_decay("independent")
def _independent(direction, lr, multiplier, wd, mask_fn):
    # After the −lr scaling, so the decay is −s_t·λ·θ: it follows the schedule's shape, not the peak lr.
    return optax.chain(direction, optax.scale_by_learning_rate(lr),
                       optax.add_decayed_weights(lambda count: -wd * multiplier(count), mask_fn))


@register_weight_decay("cautious")
def _cautious(direction, lr, multiplier, wd, mask_fn):
    return optax.chain(direction, add_cautious_decayed_weights(wd, mask_fn), optax.scale_by_learning_rate(lr))
