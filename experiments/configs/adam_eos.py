"""Adam at the edge of stability: full-batch Adam, tanh MLP 40-200-200-10, MSE, MNIST-1D (1,000 examples).

    python -m experiments.adam_eos --workdir runs/adam_eos

Cohen et al. (2022), "Adaptive gradient methods at the edge of stability": the preconditioned sharpness
λ1(P⁻¹H), P = diag(√v̂ + ε) (Adam's bias-corrected denominator), rises to (2 + 2β1)/((1 − β1)η) = 38/η
(β1 = 0.9) and hovers there. No weight decay; same data, model and initialisation as eos_weight_decay.
"""
from experiments.configs.eos_weight_decay import get_config as gd_config


def get_config():
    c = gd_config()
    c.optim.name = "adam"
    c.optim.lr = 1e-3
    c.optim.b1, c.optim.b2, c.optim.eps = 0.9, 0.999, 1e-7
    c.optim.weight_decay = 0.0
    c.train.steps = 1000                       # at these steps the ratio reaches 0.9 within 200 steps
    c.curvature.every = 20                     # 51 measurements: enough for the plateau test over the last half
    c.curvature.num_iters = 20                 # the preconditioned Lanczos starts cold at every measurement
    c.curvature.tol = 0.0                      # 20 fixed steps, as docs/stability.md's numbers were measured
    c.curvature.quantities = ("sharpness",)    # + preconditioned (added for adam)
    c.sweep.axes = "optim.lr=5e-4,1e-3,2e-3"
    return c
