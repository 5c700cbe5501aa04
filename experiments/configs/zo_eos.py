"""Zeroth-order GD at the edge of stability, against first-order GD: full batch, tanh MLP 40-16-10 (826
parameters, so the dense Hessian is formed at every measurement), MSE, MNIST-1D (1,000 examples).

    python -m experiments.zo_eos --workdir runs/zo_eos

ZO-GD uses the central two-point Gaussian estimate with optim.zo_directions = n directions per step. Its
mean-square stability on a quadratic needs η < η*(H) (jaxlab.curvature.zo_stability), so the analogue of GD's
sharpness λ1 vs 2/η is ZO's effective sharpness 2/η*(H) vs 2/η; η* lies between 2n/(tr H + (n+1)λ1) and
min(2n/tr H, 2n/((n+1)λ1)). At initialisation 2/η*(H) ≈ 20 (η* ≈ 0.1): larger steps start above the boundary,
and ZO-GD diverges there within a few hundred steps (measured at η = 0.12, 0.15, 0.2, 0.4), so the grid stays below.
"""
from experiments.configs.eos_weight_decay import get_config as gd_config


def get_config():
    c = gd_config()
    c.model.widths = (16,)
    c.optim.name = "zo_sgd"
    c.optim.weight_decay = 0.0
    c.optim.zo_directions = 8
    c.optim.zo_mu = 1e-3
    c.train.steps = 2500
    c.train.eval_every = 500
    c.curvature.every = 30                     # 84 measurements: enough for the plateau test (jaxlab.plateau)
    c.curvature.num_iters = 20
    c.curvature.tol = 0.0                      # fixed steps, as docs/stability.md's numbers were measured
    c.curvature.trace_samples = 20
    # a dense 826 × 826 Hessian per measurement (zo_dense); GD runs (experiments/zo_eos.py) drop the zo_ ones
    c.curvature.quantities = ("sharpness", "trace", "zo_stability", "zo_dense")
    c.sweep.axes = "optim.lr=0.05,0.08,0.1"
    return c
