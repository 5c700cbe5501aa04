"""Generalization at the edge of stability (Tuci et al., 2026, arXiv:2604.19740): does the sharpness dimension
rank the generalization gap better than λ1 and tr H? Minibatch SGD on a tanh MLP 40-16-10 (826 parameters, so
the dense per-map SVD of the step map is affordable), MSE, MNIST-1D (1,000 training examples). MSE because
with cross-entropy this model ends far below the edge (λ1·η/2 = 0.05–0.43 at η ≤ 0.4, measured); here λ1·η/2
ends at 0.43–1.0 (batch 256 at 0.91–1.0), and η = 1.2 diverges.

    python -m experiments.gen_eos --workdir runs/gen_eos

Grid: learning rate × batch size × seeds, vmapped over lr and seeds (one program per batch size). Curvature is
measured once, at the end (curvature.every = train.steps, at_start = False), on the 1,000 training examples: λ1, the
Hutchinson trace, the sharpness dimension from the dense SVD of curvature.dim_samples sampled minibatch maps
(the random-dynamical-system definition, exact for this model) and from SLQ of the same maps' Hessians.
"""
import ml_collections

from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.name = "mnist1d"
    c.data.num_train = 1000
    c.model.name = "mlp"
    c.model.widths = (16,)
    c.model.activation = "tanh"
    c.model.init_scheme = "torch"
    c.loss.name = "mse"
    c.optim.name = "sgd"
    c.optim.lr = 0.1
    c.optim.weight_decay = 0.0
    c.train.steps = 3000
    c.train.log_every = 100
    c.train.eval_every = 500
    c.curvature.every = 3000                   # = train.steps, and not at step 0: the final state only
    c.curvature.at_start = False
    c.curvature.quantities = ("sharpness", "trace", "sharpness_dim_dense", "sharpness_dim_slq")
    c.curvature.num_iters = 30
    c.curvature.trace_samples = 16             # Hutchinson probes, and SLQ probes per sampled map
    c.curvature.slq_iters = 48
    c.curvature.dim_samples = 8                # sampled minibatch maps averaged (Def. 4.2's expectation)
    c.curvature.warm_start = False
    c.sweep.seeds = 2
    c.sweep.axes = "optim.lr=0.1,0.2,0.4,0.8;train.batch_size=64,256"
    c.gen = ml_collections.ConfigDict(dict(    # this experiment's own section
        mode="kendall",                        # kendall (grid: measures vs the gap) | grokking (one run's trajectory)
        # record keys correlated with the gap (name=key): the sharpness dimension (RDS dense, SLQ), the top
        # Lyapunov exponent ln‖J‖, λ1 and the trace
        measures="sharpness_dim=sharpness_dim_dense,sharpness_dim_slq=sharpness_dim_slq,"
                 "lyapunov_top=step_lyapunov_top_dense,lambda1=sharpness,trace=hessian_trace",
        claim_measure="sharpness_dim",         # the claim: its τ exceeds those of claim_against
        claim_against="lambda1,trace",
        fit_accuracy=0.99,                     # grokking: train accuracy counted as fitted
        grok_accuracy=0.9,                     # grokking: test accuracy counted as generalised
    ))
    return c
