"""Grokking a + b mod p with full-batch GD and weight decay, the sharpness dimension tracked through it: ReLU MLP
on the one-hot pair (2p → 128 → p), cross-entropy, half of the p² pairs for training.

    python -m experiments.gen_eos --config=experiments/configs/gen_eos_grokking.py --workdir runs/grok

Tracked every curvature.every steps on the training pairs: λ1, the Hutchinson trace and the sharpness dimension
from SLQ (full batch: one map, J = I − η(H + λM) for GD with weight decay λ on the masked leaves: exact here).
gen_eos reports where train accuracy saturates, where test accuracy jumps, and where each measure moves most.
"""
from experiments.configs.gen_eos import get_config as grid_config


def get_config():
    c = grid_config()
    c.data.name = "modular"
    c.data.modulus = 23
    c.data.train_fraction = 0.5
    c.data.num_train = 0
    c.data.standardize = False
    c.model.widths = (128,)
    c.model.activation = "relu"
    c.model.init = "lecun"
    c.optim.name = "sgd"
    c.optim.lr = 1.0
    c.optim.weight_decay = 1e-3
    c.optim.wd_mask = "all"
    c.train.batch_size = 0
    c.train.steps = 20000
    c.train.log_every = 100
    c.train.eval_every = 100
    c.curvature.every = 500
    c.curvature.quantities = ("sharpness", "trace", "sharpness_dim_slq")
    c.curvature.num_iters = 20
    c.curvature.trace_samples = 8
    c.curvature.slq_iters = 48
    c.curvature.dim_samples = 1
    c.sweep.seeds = 1
    c.sweep.axes = ""
    c.gen.mode = "grokking"
    c.gen.measures = "sharpness_dim_slq=sharpness_dim_slq,lyapunov_top=slq_lyapunov_top,lambda1=sharpness," \
                     "trace=hessian_trace"
    return c
