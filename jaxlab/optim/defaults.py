"""The ``optim`` config section: every field with its default.

Its numeric fields are also those of :class:`jaxlab.optim.numbers.Numbers` (what a sweep may trace, resolved once
per run by ``jaxlab.optim.numbers.resolve``); strings, booleans and tuples (names, masks) are structure.
"""
from __future__ import annotations

import ml_collections


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
