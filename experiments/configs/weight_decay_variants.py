"""Weight-decay variants (none | l2 | decoupled | independent | cautious) with Adam on MNIST-1D (1,000 training examples), ReLU MLP 40-128-128-10,
cross-entropy, minibatch 128, warmup + cosine; a grid of λ and two peak lrs, each point vmapped over 3 seeds.

    python -m experiments.weight_decay_variants --workdir runs/wd
    python -m experiments.weight_decay_variants --config.optim.name=momentum \
        --config.sweep.axes="optim.wd_variant=none,l2,decoupled;optim.weight_decay=1e-3,1e-2,1e-1;optim.lr=0.02,0.05"
    python -m experiments.weight_decay_variants --config.curvature.every=200   # adds sharpness (jaxlab.curvature)

λ is the decoupled rate; "independent" runs with λ·optim.lr (equal per-step decay at the reference lr), so at the
other lr it shows decay that does not follow the learning rate. Outputs: results.md (table), summary.json,
metrics.jsonl, weight_decay_variants.png.
"""
from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.name = "mnist1d"
    c.data.num_train = 1000                     # few examples: an MLP overfits, so decay matters
    c.model.name = "mlp"
    c.model.widths = (128, 128)
    c.model.activation = "relu"
    c.loss.name = "cross_entropy"
    c.optim.name = "adam"
    c.optim.lr = 3e-3
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_steps = 50
    c.train.steps = 1000
    c.train.batch_size = 128
    c.train.log_every = 100
    c.train.eval_every = 500
    c.sweep.seeds = 3
    c.sweep.axes = ("optim.wd_variant=none,l2,decoupled,independent,cautious;"
                    "optim.weight_decay=0.001,0.01,0.1,1.0,10.0;optim.lr=0.001,0.003")
    return c
