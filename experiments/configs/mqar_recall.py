"""MQAR recall vs state size, CPU-sized: attention softmax | linear | retention | gla × d_model 16, 32 ×
4 and 8 key-value pairs, 2 seeds vmapped per group (16 groups; the two pair counts of a (kind, width) share one
compiled program). Sequences of 32 tokens, vocabulary 32 (keys 1-15, values 16-31), 2-layer LMs with 2 heads
(state d_model²/2 per layer for the linear kinds), Adam with a cosine schedule, batch 32.

    python -m experiments.mqar_recall --workdir runs/mqar
    python -m experiments.mqar_recall --config.train.steps=3000 --workdir runs/mqar_long

Measured (docs/lm.md): at this budget no kind learns the key-value binding; recall sits at the plateau of picking
a value from the context (≈0.33 with 4 pairs, ≈0.25 with 8) for softmax and the linear kinds alike, below it
for retention/gla at d_model 16. Far below Zoology's scale (vocabulary 8,192, T up to 512, tens of thousands of steps): see
experiments/configs/mqar_recall_paper.py for that grid on a GPU/TPU.
"""
from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.name = "mqar"
    c.data.seq_len = 32
    c.data.vocab_size = 32
    c.data.num_kv_pairs = 4
    c.data.num_examples = 8192             # 2,048 held-out sequences for recall
    c.model.name = "transformer"
    c.model.d_model = 32
    c.model.num_layers = 2
    c.model.num_heads = 2
    c.model.mlp_ratio = 2
    c.model.max_len = 32
    c.model.activation = "gelu"
    c.loss.name = "cross_entropy"
    c.optim.name = "adam"
    c.optim.lr = 3e-3
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_steps = 50
    c.train.steps = 600
    c.train.batch_size = 32
    c.train.log_every = 100
    c.train.eval_every = 0
    c.train.eval_examples = 256             # train-set evaluation: a fixed subset (recall is on the test set)
    c.sweep.seeds = 2
    c.sweep.axes = "model.attention=softmax,linear,retention,gla;model.d_model=16,32;data.num_kv_pairs=4,8"
    return c
