"""WSM (warmup–stable + checkpoint merging) vs WSD and cosine at equal budget: MNIST-1D (4,000 examples),
ReLU MLP 40-128-128-10, cross-entropy, SGD + momentum 0.9, peak lr 0.1, minibatch 32, 2,000 steps (16
epochs), 100 warmup steps, 3 seeds vmapped; checkpoints every 20 steps, all kept, merged afterwards.

    python -m experiments.wsm --workdir runs/wsm
    python -m experiments.merge --workdir runs/wsm --scheme cosine --window 21     # one more merge, afterwards

Outputs: results.md (tables), summary.json ("wsm": rows, grid, factor spreads), wsm.png, loss_curves.png,
loss_bands.png, metrics.jsonl, checkpoints/ (one set per schedule).
"""
import ml_collections

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
    c.optim.schedule.name = "constant"
    c.optim.schedule.warmup_steps = 100
    c.optim.schedule.end_factor = 0.0
    c.optim.schedule.decay_fraction = 0.2      # wsd: the last 400 steps = the comparison's merge duration
    c.optim.schedule.decay_shape = "linear"
    c.train.steps = 2000
    c.train.batch_size = 32
    c.train.log_every = 20
    c.train.eval_every = 0
    c.checkpoint.every = 20
    c.checkpoint.keep_last = 0                 # keep every checkpoint: the merges are made afterwards
    c.sweep.seeds = 3
    c.wsm = ml_collections.ConfigDict(dict(  # this experiment's own section: merges made after training
        schedules="constant,wsd,cosine",     # runs compared at equal budget; constant = warmup-stable (merged)
        intervals=(20, 40, 80, 160),         # checkpoint intervals I of the merge grid (multiples of every)
        counts=(2, 3, 5, 9, 17),             # numbers N of merged checkpoints; duration D = (N-1)*I
        grid_scheme="linear",                # merge scheme of the grid (a WSM shape or uniform)
        compare_duration=400,                # D of the scheme comparison (all WSM shapes, uniform, EMA)
        ema_decays=(0.9, 0.97),              # EMA decay per checkpoint, over the whole run
    ))
    return c
