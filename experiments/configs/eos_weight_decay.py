"""Edge of stability × weight decay: full-batch GD, tanh MLP 40-200-200-10, MSE, MNIST-1D (1,000 examples).

    python -m experiments.eos_weight_decay --workdir runs/eos
    python -m experiments.eos_weight_decay --config.sweep.axes="optim.lr=0.1;optim.weight_decay=0,0.01" --workdir runs/eos2
    python -m experiments.eos_weight_decay --config=experiments/configs/eos_weight_decay_cnn.py --workdir runs/eos_cnn

Shows: progressive sharpening, then λ1 hovering at 2/η (wd = 0); weight decay slowing the sharpening; and a large
enough weight decay holding λ1 well below 2/η. Decoupled weight decay on every parameter (θ ← θ − η(∇L + λθ); for
GD the same step as L2, as in "Does Weight Decay Enhance Training Stability?"); switch with optim.wd_variant /
optim.wd_mask. PyTorch's default initialisation (as in Cohen et al.'s EoS experiments): the network starts flat
(λ1 ≈ 7), so the sharpening towards 2/η is visible.
"""
from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.name = "mnist1d"
    c.data.num_train = 1000
    c.data.standardize = True
    c.model.name = "mlp"
    c.model.widths = (200, 200)
    c.model.activation = "tanh"
    c.model.init_scheme = "torch"
    c.loss.name = "mse"
    c.optim.name = "sgd"
    c.optim.lr = 0.1
    c.optim.wd_variant = "decoupled"
    c.optim.wd_mask = "all"
    c.train.steps = 2500
    c.train.batch_size = 0
    c.train.log_every = 10
    c.train.eval_every = 100
    c.curvature.every = 50
    c.curvature.quantities = ("sharpness", "eig_gap", "ntk")   # ntk: function-space curvature vs the same threshold
    c.curvature.tol = 3e-3                   # stop Lanczos once the Ritz residuals are <= 3e-3·λ (λ1 then within 1e-3)
    c.curvature.num_iters = 40               # the cap; warm-started from the previous measurement's Ritz vectors
    c.sweep.axes = "optim.lr=0.1,0.2;optim.weight_decay=0,0.002,0.005,0.01"
    return c
