"""Metrics for weight-decay research, computed from params and optimiser state (jittable, vmappable).

    optim_metrics(params, opt_state, lr, cfg, numbers) -> {
        "param_norm/<group>": ‖θ_group‖                 one per top-level parameter group (layer / block)
        "eff_lr/<path>":      lr/‖θ‖² (sgd, momentum) or lr/‖θ‖ (adam, lion)   for optim.scale_invariant leaves
        "cautious_fraction":  fraction of decayed coordinates the cautious mask kept, last step
        "lion_linf", "lion_linf_bound":  ‖θ‖∞ over decayed leaves, and the bound decoupled decay implies
    }

Effective lr: for weights w the loss is invariant to the scale of (a kernel feeding a normalisation), a step
changes the *direction* of w by about ``lr·‖∇‖/‖w‖`` and ``‖∇‖ ∝ 1/‖w‖`` — so lr/‖w‖² for SGD. Adam and Lion
normalise the gradient's scale away, leaving lr/‖w‖. Weight decay sets ‖w‖ and hence this rate (Van Laarhoven,
2017; Zhang et al., 2019; Kosson et al., 2024).

Lion bound: with decoupled decay ``θ ← (1 − lr_t·λ)θ − lr_t·sign(·)`` every coordinate that starts inside
``[−1/λ, 1/λ]`` stays there, and one outside contracts towards it (Chen et al., 2023; Xie & Li, 2024);
with independent decay ``θ ← (1 − s_t·λ)θ − lr·s_t·sign(·)`` the bound is lr/λ.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import optax

from jaxlab.optim.weight_decay import decay_mask
from jaxlab.tree import path_str, tree_norm


def group_norms(params) -> dict:
    """{"param_norm/<top-level key>": norm} (a single "param_norm/params" for a bare array or list)."""
    if not isinstance(params, dict) and not hasattr(params, "items"):
        return {"param_norm/params": optax.tree.norm(params)}
    return {f"param_norm/{k}": optax.tree.norm(v) for k, v in params.items()}


def effective_lr(params, lr, patterns, power: int) -> dict:
    """{"eff_lr/<path>": lr/‖θ‖^power} for each leaf whose path matches ``patterns`` (a regex or a tuple of them)."""
    compiled = [re.compile(p) for p in ((patterns,) if isinstance(patterns, str) else patterns)]
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = path_str(path)
        if any(p.search(name) for p in compiled):
            out[f"eff_lr/{name}"] = lr / jnp.maximum(tree_norm(leaf), 1e-30) ** power
    return out


def cautious_fraction(opt_state):
    """The fraction the cautious transform recorded, or None if the chain has none."""
    return optax.tree_utils.tree_get(opt_state, "decayed_fraction")


def lion_linf_bound(params, weight_decay, wd_variant: str, wd_mask="default", lr=1.0) -> dict:
    """{"lion_linf": max |θ| over decayed leaves, "lion_linf_bound": 1/λ (decoupled) or lr/λ (independent)}."""
    mask = decay_mask(wd_mask)(params)
    leaves = [jnp.max(jnp.abs(p)) for p, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if m and p.size]
    linf = jnp.max(jnp.stack(leaves)) if leaves else jnp.zeros([], jnp.float32)
    scale = lr if wd_variant == "independent" else 1.0
    bound = jnp.where(weight_decay > 0, scale / jnp.maximum(weight_decay, 1e-30), jnp.inf)
    return {"lion_linf": linf, "lion_linf_bound": bound}


def optim_metrics(params, opt_state, lr, cfg, numbers) -> dict:
    """All of the above that apply to ``cfg`` (the optim section); lr: the current learning rate; numbers: the
    run's resolved :class:`jaxlab.optim.numbers.Numbers` (weight decay and peak lr for Lion's bound)."""
    out = group_norms(params)
    if cfg.scale_invariant:
        out.update(effective_lr(params, lr, cfg.scale_invariant, power=2 if cfg.name in ("sgd", "momentum") else 1))
    frac = cautious_fraction(opt_state)
    if frac is not None:
        out["cautious_fraction"] = frac
    if cfg.name == "lion" and cfg.wd_variant in ("decoupled", "independent"):
        out.update(lion_linf_bound(params, numbers.weight_decay, cfg.wd_variant, cfg.wd_mask, numbers.lr))
    return out
