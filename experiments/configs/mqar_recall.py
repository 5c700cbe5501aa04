"""MQAR recall vs state size, CPU-sized (after Zoology, Arora et al. 2023): linear | retention | gla with 4, 2
or 1 heads at d_model 32 (state d_model²/heads = 256, 512, 1024 per layer) and softmax (2 heads, KV cache
2·T·d_model = 2,048), × 2, 4, 8 key-value pairs, × lr 3e-3, 1e-2 (traced: one program) × 2 seeds vmapped; each
point reports its best lr. Sequences of 32 tokens, vocabulary 32, keys and values from one shared pool (the split
pool's "bag of values" shortcut, docs/lm.md), 2-layer LMs, Adam with a cosine schedule, batch 16, 1,500 steps.

    python -m experiments.mqar_recall --workdir runs/mqar
    python -m experiments.mqar_recall --config.train.steps=3000 --workdir runs/mqar_long

Far below Zoology's scale (vocabulary 8,192, T up to 512, tens of thousands of steps): see
experiments/configs/mqar_recall_paper.py for that grid on a GPU/TPU.

CPU time: see docs/lm.md
"""
import ml_collections

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
    c.train.steps = 1500
    c.train.batch_size = 16
    c.train.log_every = 250
    c.train.eval_every = 0
    c.train.eval_examples = 256             # train-set evaluation: a fixed subset (recall is on the test set)
    c.sweep.seeds = 2
    c.sweep.axes = ("model.attention=linear,retention,gla;model.num_heads=4,2,1;data.num_kv_pairs=2,4,8;"
                    "optim.lr=0.003,0.01")
    c.recall = ml_collections.ConfigDict(dict(  # this experiment's own section
        softmax_axes="data.num_kv_pairs=2,4,8;optim.lr=0.003,0.01",  # softmax's grid ("" = no softmax runs)
    ))
    return c
