"""Learning-rate schedules at equal budget: SGD + momentum on MNIST-1D (4,000 examples), ReLU MLP 40-128-128-10,
cross-entropy, minibatch 32, 1,500 steps (12 epochs: still fitting, so the schedule decides the final loss), the
same peak lr and warmup for every schedule, 3 seeds vmapped; plus "refined" (Defazio et al., 2023), derived from
the per-step gradient norms of the optim.schedule.name run (linear decay), averaged over its seeds.

    python -m experiments.schedules --workdir runs/schedules
    python -m experiments.schedules --config.sweep.axes="optim.schedule.name=cosine,wsd,refined;optim.lr=0.05,0.1"

Outputs: results.md (table), summary.json, metrics.jsonl, schedules.png, lr_curves.json, grad_norms_<source>.npy.
"""
from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.name = "mnist1d"
    c.model.name = "mlp"
    c.model.widths = (128, 128)
    c.model.activation = "relu"
    c.loss.name = "cross_entropy"
    c.optim.name = "momentum"
    c.optim.lr = 0.1
    c.optim.momentum = 0.9
    c.optim.schedule.name = "linear"           # the run whose gradient norms are refined
    c.optim.schedule.warmup_steps = 75
    c.optim.schedule.end_factor = 0.01         # exponential needs > 0; the others end at 1% of the peak
    c.optim.schedule.decay_fraction = 0.2      # wsd
    c.optim.schedule.decay_shape = "one_minus_sqrt"   # wsd cooldown and each cyclic re-decay
    c.optim.schedule.num_cycles = 2            # cyclic
    c.train.steps = 1500
    c.train.batch_size = 32
    c.train.log_every = 100
    c.sweep.seeds = 3
    c.sweep.axes = ("optim.schedule.name=constant,linear,cosine,one_minus_sqrt,rex,exponential,inv_sqrt,wsd,"
                    "cyclic,refined")
    return c
