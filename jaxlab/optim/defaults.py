"""The ``optim`` config section: every field with its default, and how ``hp`` overrides resolve.

A sweep varies numeric fields by passing ``hp`` (a dict of possibly traced scalars keyed by field name,
``"lr"``, ``"weight_decay"``, ``"schedule.warmup_steps"``, ...). :func:`resolve` merges hp over the config,
so the transforms built from the result read every number from one place and ``jax.vmap`` over hp is one
compiled program. Strings, booleans and tuples (names, masks) are structure: they stay in the config.
"""
from __future__ import annotations

import ml_collections

from jaxlab.config import ConfigError


def default_schedule_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        # constant | linear | cosine | one_minus_sqrt | rex | exponential | inv_sqrt | wsd | cyclic | refined
        name="constant",
        warmup_steps=0,          # linear warmup: lr·(t+1)/w at step t < w (not refined; each cycle for cyclic)
        end_factor=0.0,          # final lr / peak lr of a decay (exponential needs > 0)
        decay_fraction=0.2,      # wsd: fraction of train.steps spent in the final decay
        decay_shape="linear",    # wsd / cyclic decay shape: linear | cosine | one_minus_sqrt | rex
        timescale=0.0,           # inv_sqrt: lr·sqrt(τ/(τ + t − w)) after warmup; 0 = use warmup_steps
        num_cycles=1,            # cyclic: re-warm + re-decay this many times over train.steps
        refine_path="",          # refined: .npy / .txt / metrics.jsonl with a previous run's per-step grad norms
        refine_width=0.1,        # refined: median-filter width as a fraction of the recorded steps (odd window)
        refine_norm="l2",        # refined: weights g_t⁻² ("l2", SGD) or g_t⁻¹ ("l1", Adam: the file holds ℓ1 norms)
    ))


def default_optim_config() -> ml_collections.ConfigDict:
    """Every optimiser field jaxlab understands. Names are registries: see OPTIMIZERS, WEIGHT_DECAY, SCHEDULES."""
    return ml_collections.ConfigDict(dict(
        # sgd | momentum | adam | lion (AdamW = adam + wd_variant="decoupled") | zo_sgd | zo_momentum | zo_adam
        # (zeroth-order: the base method on a two-point gradient estimate; see jaxlab.optim.zeroth_order)
        name="sgd",
        lr=0.01,                 # peak learning rate; the schedule multiplies it
        momentum=0.9,            # momentum: heavy-ball coefficient (sgd ignores it)
        nesterov=False,          # momentum: Nesterov form
        b1=0.9,                  # adam / lion first-moment decay
        b2=0.999,                # adam second-moment decay
        lion_b2=0.99,            # lion's momentum decay β₂ (Chen et al., 2023 and optax default; not adam's b2)
        eps=1e-8,                # adam
        weight_decay=0.0,        # λ (see wd_variant for what a step does with it)
        # none | l2 (λθ added to the gradient) | decoupled (−lr_t·λθ, AdamW) | independent (−(lr_t/lr)·λθ,
        # Loshchilov & Hutter) | cautious (−lr_t·λθ only where update and θ agree in sign)
        wd_variant="decoupled",
        # which leaves decay: default (not biases / norm scales) | all | none | a regex searched in each leaf's path
        # ("Dense_0/kernel", "block_1/attn/wq/kernel"), e.g. "kernel$|embedding" (a tuple of regexes also works)
        wd_mask="default",
        grad_clip=0.0,           # clip the gradient to this global norm; 0 = off
        ema=0.0,                 # EMA decay of the parameters kept in the optimiser state (ema_params); 0 = off
        zo_directions=1,         # zo_*: Gaussian directions n per step (2n loss evaluations); static structure
        zo_mu=1e-3,              # zo_*: smoothing radius μ of the central two-point estimator (traceable)
        scale_invariant="",      # regex of the paths of scale-invariant weights: their effective lr is logged
        schedule=default_schedule_config(),
    ))


# Fields that numbers may come from hp (traced). refine_width shapes a numpy array at build time, zo_directions is
# a loop length: static.
_STATIC_NUMERIC = {"schedule.refine_width", "zo_directions"}


def numeric_fields() -> tuple[str, ...]:
    """Names hp may override: the int/float fields of the config (schedule fields as ``schedule.<name>``)."""
    out = []

    def walk(cfg, prefix):
        for k, v in cfg.items():
            if isinstance(v, ml_collections.ConfigDict):
                walk(v, f"{prefix}{k}.")
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and f"{prefix}{k}" not in _STATIC_NUMERIC:
                out.append(f"{prefix}{k}")

    walk(default_optim_config(), "")
    return tuple(out)


NUMERIC_FIELDS = numeric_fields()


def resolve(cfg, hp=None) -> dict:
    """{field: value} for every numeric field, hp values (possibly traced) taking precedence over the config."""
    hp = dict(hp or {})
    unknown = sorted(set(hp) - set(NUMERIC_FIELDS))
    if unknown:
        raise ConfigError(f"hp keys {unknown} are not numeric optim fields; choose from {list(NUMERIC_FIELDS)}")
    out = {}
    for name in NUMERIC_FIELDS:
        node = cfg
        for part in name.split("."):
            node = node[part]
        out[name] = hp.get(name, node)
    return out


def schedule_params(p: dict) -> dict:
    """The schedule's numbers from a resolved dict, without the ``schedule.`` prefix."""
    return {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith("schedule.")}
