"""Stability of any optimiser from its own step: full-batch GD, heavy ball, Nesterov, Adam and AdamW on a tanh MLP
40-32-32-10 (2,698 parameters), MSE, MNIST-1D (1,000 examples), each trained into its edge of stability.

    python -m experiments.step_stability --workdir runs/step_stability
    python -m experiments.step_stability --config.stability.methods=sgd,adam --workdir runs/step_stability2

For each method the flip multiplier (the leftmost eigenvalue of the Jacobian of one real step on the training
state, jaxlab.curvature.step_map) is tracked during training; at the final state the learning rate at which it
reaches −1 is found by bisection and compared with the optimiser's closed-form threshold where one is declared.
"""
import ml_collections

from experiments.configs.eos_weight_decay import get_config as gd_config


def get_config():
    c = gd_config()
    c.model.widths = (32, 32)
    c.optim.weight_decay = 0.0
    c.optim.momentum = 0.9
    c.optim.b1, c.optim.b2, c.optim.eps = 0.9, 0.999, 1e-7
    c.train.steps = 1500
    c.train.log_every = 10
    c.train.eval_every = 500
    c.curvature.every = 20
    c.curvature.quantities = ("sharpness", "step_flip")   # + preconditioned for Adam (its declared operator)
    c.curvature.num_iters = 20
    c.curvature.tol = 0.0                      # fixed steps, as docs/stability.md's numbers were measured
    c.curvature.step_iters = 40
    c.sweep.axes = ""
    c.stability = ml_collections.ConfigDict(dict(     # this experiment's own section
        methods="sgd,momentum,nesterov,adam,adamw",   # compared methods (experiments/step_stability.py METHODS)
        lr=ml_collections.ConfigDict(dict(sgd=0.2, momentum=0.38, nesterov=0.136, adam=0.002, adamw=0.002)),
        adamw_weight_decay=0.1,                       # AdamW's decoupled λ (every parameter: optim.wd_mask)
        arnoldi_iters=80,                             # Arnoldi steps per flip multiplier in the bisection
        bisect_iters=24,                              # bisection steps on log η (bracket widened until found)
        tolerance=0.1,                                # "hovers at −1": last-half mean within this, and plateaued
    ))
    return c
