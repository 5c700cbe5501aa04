"""Edge of stability of a Transformer LM under Adam: full-batch Adam on MQAR (256 sequences of 32 tokens, 4
key-value pairs), 2-layer softmax LM (d_model 32), masked token-mean cross-entropy over the query positions.

    python -m experiments.eos_weight_decay --config=experiments/configs/lm_eos.py --workdir runs/lm_eos

Tracks, every 25 steps on a fixed batch of 64 training sequences (curvature.num_examples), the sharpness λ1 of
the loss Hessian and Adam's preconditioned sharpness λ1(P^-1/2 H P^-1/2), P = √v̂ + ε, against Adam's threshold
(2+2β1)/((1−β1)η) (Cohen et al., "Adaptive gradient methods at the edge of stability"); eos_sharpness.png draws
the preconditioned sharpness against it, per weight decay (panels) and lr (colours). The preconditioned sharpness
is NaN at step 0 (no second-moment estimate before Adam's first update).
"""
from experiments.configs.mqar_recall import get_config as mqar_config


def get_config():
    c = mqar_config()                        # the same data, model and Adam as the recall experiment, then:
    c.data.num_examples = 256
    c.data.kv_pool = "split"                 # the pool its measurements were made with (docs/lm.md)
    c.data.kv_pairs_mix = ()                 # 4 pairs (data.num_kv_pairs), not the recall experiment's mixture
    c.model.num_heads = 2                    # the model its measurements were made with: 2 heads, no short conv
    c.model.conv_size = 0
    c.data.num_test = 0
    c.optim.schedule.name = "constant"       # a constant step: the threshold 38/η stays put
    c.optim.schedule.warmup_steps = 0
    c.optim.wd_variant = "decoupled"
    c.train.steps = 300
    c.train.batch_size = 0                   # full batch: the EoS setting
    c.train.log_every = 25
    c.train.eval_every = 0
    c.train.eval_examples = 0
    c.curvature.every = 25
    c.curvature.quantities = ("sharpness",)  # + "preconditioned", added for Adam by the tracker
    c.curvature.num_examples = 64
    c.curvature.num_iters = 10               # warm-started from the previous measurement
    c.sweep.seeds = 1
    c.sweep.axes = "optim.lr=0.003,0.01;optim.weight_decay=0,0.1"
    return c
