"""Grokking a + b mod 59 with AdamW, the sharpness dimension tracked through it: ReLU MLP on the one-hot pair
(118 → 256 → 59; 45,627 parameters), MSE, full batch on half of the 3,481 pairs.

    python -m experiments.gen_eos --config=experiments/configs/gen_eos_grokking.py --workdir runs/grok

Tracked every curvature.every steps on 512 training pairs: λ1 (and Adam's preconditioned λ1(P⁻¹H)), the
Hutchinson trace, and the sharpness dimension of AdamW's real step on its whole state (parameters and both moments,
n = 136,881) from SLQ of JᵀJ (sharpness_dim_step_slq; GD's form I − ηH does not describe Adam's step).
gen_eos reports where train accuracy saturates, where test accuracy jumps, and where each measure moves most.
Full-batch GD with weight decay (η = 0.5–1, λ = 3e-3–3e-2, p = 23 and 31) memorised without generalising within
30,000 steps (measured), hence AdamW (lr 1e-3, β2 = 0.98, decoupled λ = 1 on every parameter).
"""
from experiments.configs.gen_eos import get_config as grid_config


def get_config():
    c = grid_config()
    c.data.name = "modular"
    c.data.modulus = 59
    c.data.train_fraction = 0.5
    c.data.num_train = 0
    c.data.standardize = False
    c.model.widths = (256,)
    c.model.activation = "relu"
    c.model.init_scheme = "lecun"
    c.loss.name = "mse"
    c.optim.name = "adam"
    c.optim.lr = 1e-3
    c.optim.b1, c.optim.b2 = 0.9, 0.98
    c.optim.wd_variant = "decoupled"
    c.optim.weight_decay = 1.0
    c.optim.wd_mask = "all"
    c.train.batch_size = 0
    c.train.steps = 2000
    c.train.log_every = 50
    c.train.eval_every = 50
    c.curvature.every = 100
    c.curvature.at_start = True
    c.curvature.num_examples = 512
    c.curvature.quantities = ("sharpness", "trace", "sharpness_dim_step_slq")
    c.curvature.num_iters = 20
    c.curvature.trace_samples = 4
    c.curvature.slq_iters = 32
    c.curvature.dim_samples = 1
    c.sweep.seeds = 1
    c.sweep.axes = ""
    c.gen.mode = "grokking"
    c.gen.measures = ",".join([
        "sharpness_dim_step_slq=sharpness_dim_step_slq", "lyapunov_top=step_slq_lyapunov_top",
        "sharpness_dim_frozen=sharpness_dim_step_slq_frozen", "lyapunov_top_frozen=step_slq_lyapunov_top_frozen",
        "lambda1=sharpness", "lambda1_preconditioned=preconditioned_sharpness", "trace=hessian_trace"])
    return c
