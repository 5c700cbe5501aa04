"""MQAR recall vs state size, CPU-sized (after Zoology, Arora et al. 2023): linear | retention | gla with 4, 2
or 1 heads at d_model 32 (state d_model²/heads = 256, 512, 1024 per layer) and softmax (2 heads, KV cache
2·T·d_model = 2,048), × 4, 6, 8 key-value pairs, × a 2-lr grid (traced: one program) × 2 seeds vmapped; each
point reports its best lr. Sequences of 32 tokens, vocabulary 32, keys and values from one shared pool (the split
pool's "bag of values" shortcut: docs/lm.md), 2-layer LMs, Adam with a cosine schedule.

Budgets differ, for CPU time: the linear kinds train 1,000 steps of batch 16 (lr 3e-3, 1e-2); their recall is
flat from ~750 such steps on (linear, 4 heads, 4 pairs: 0.149 at 750 steps, 0.147 at 1,500, with the first
shared pool, whose keys and values could overlap) and matches what 3,000 steps of batch 32 gave them. Softmax
needs 3,000 steps of batch 32 (lr 1e-3, 3e-3) to form its recall circuit: at 1,500 steps of batch 16 it had 0.26
with 4 pairs. Fewer than 4 pairs means fewer labelled queries per sequence and slower learning (2 pairs: softmax
0.71-0.85 after 3,000 steps of batch 32). Equal budgets: --config.train.steps=3000 --config.train.batch_size=32 with
--config.recall.softmax_axes="data.num_kv_pairs=4,6,8;optim.lr=0.001,0.003" (softmax's grid sets both keys too;
about 6x the linear kinds' CPU time; not run).

    python -m experiments.mqar_recall --workdir runs/mqar
    python -m experiments.mqar_recall --config.recall.softmax_axes= --workdir runs/mqar_linear   # no softmax

Far below Zoology's scale (vocabulary 8,192, T up to 512, tens of thousands of steps): see
experiments/configs/mqar_recall_paper.py for that grid on a GPU/TPU.
"""
import ml_collections

from jaxlab.models import model_config
from jaxlab.schema import base_config


def get_config():
    c = base_config()
    c.data.name = "mqar"
    c.data.seq_len = 32
    c.data.vocab_size = 32
    c.data.num_kv_pairs = 4
    c.data.kv_pool = "shared"
    c.data.queries = "uniform"
    c.data.num_examples = 8192             # training sequences; 2,048 held out, of which num_test for recall
    c.data.num_test = 1024
    c.model = model_config("transformer", d_model=32, num_layers=2, num_heads=2, mlp_ratio=2, max_len=32,
                           activation="gelu")
    c.loss.name = "cross_entropy"
    c.optim.name = "adam"
    c.optim.lr = 3e-3
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_steps = 50
    c.train.steps = 1000
    c.train.batch_size = 16
    c.train.log_every = 250
    c.train.eval_every = 0
    c.train.eval_examples = 256             # train-set evaluation: a fixed subset (recall is on the test set)
    c.sweep.seeds = 2
    c.sweep.axes = ("model.attention=linear,retention,gla;model.num_heads=4,2,1;data.num_kv_pairs=4,6,8;"
                    "optim.lr=0.003,0.01")
    c.recall = ml_collections.ConfigDict(dict(  # this experiment's own section
        # softmax's own grid ("" = no softmax runs); single-valued axes act as overrides
        softmax_axes="train.steps=3000;train.batch_size=32;data.num_kv_pairs=4,6,8;optim.lr=0.001,0.003",
    ))
    return c
