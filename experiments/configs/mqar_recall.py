"""MQAR recall vs state size, CPU-sized (after Zoology, Arora et al. 2023): linear | retention | gla at d_model 8,
16 and 32 with one head (state d_model² + the short convolution's 3·3·d_model = 136, 400, 1,312 per layer) and
softmax (d_model 32, 2 heads; KV cache 2·T·d_model + 288) × a 2-lr grid per kind (traced: one program) × 2 seeds
vmapped; each point reports its best lr. Every model trains on a mixture of 2, 4, 6, 8 and 10 key-value pairs
(Zoology's practice; T = 32 holds at most 10: 2K context tokens and K queries) and recall is measured at each count
on fresh sequences. Vocabulary 32, keys and values from one shared pool (the split pool's "bag of values" shortcut:
docs/lm.md), 2-layer LMs, Adam with a cosine schedule (200 warmup steps), every kind the same budget: 1,000 steps
of batch 16.

Three changes to the mixers make the linear kinds learn recall at this budget (measurements: docs/lm.md):
  - model.conv_size=4: a short causal convolution of q, k and v in every mixer, as in H3, Mamba, Based and GLA.
    Without it the linear kinds sit at the token-id "bag of values" (≈ 1/(2K)) whatever their state, and
    softmax needs 3,000 steps of batch 32;
  - model.output_gate=False: retention and gla without their swish output gate, which left most seeds on the
    first plateau after 600 steps;
  - model.gate_bias_init=3: gla's decays start at 0.997 per step, not 0.958; from 0.958 half the seeds stopped
    at 0.39 recall with 8 pairs.

    python -m experiments.mqar_recall --workdir runs/mqar
    python -m experiments.mqar_recall --config.model.conv_size=0 --workdir runs/mqar_noconv   # without the conv
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
    c.data.kv_pairs_mix = (2, 4, 6, 8, 10)  # trained on all, recall measured on each (Zoology's mixture)
    c.data.kv_pool = "shared"
    c.data.queries = "uniform"
    c.data.num_examples = 8192             # training sequences; 2,048 held out, of which num_test for recall
    c.data.num_test = 1024
    c.model = model_config("transformer", d_model=32, num_layers=2, num_heads=1, mlp_ratio=2, max_len=32,
                           activation="gelu", conv_size=4,
                           output_gate=False,   # retention, gla: RetNet's / GLA's swish output gate off (docs/lm.md)
                           gate_bias_init=3.0)  # gla: initial decays 0.997 per step, not 0.958 (docs/lm.md)
    c.loss.name = "cross_entropy"
    c.optim.name = "adam"
    c.optim.lr = 1e-2
    c.optim.schedule.name = "cosine"
    c.optim.schedule.warmup_steps = 200     # 50 left one retention seed in two on the first plateau (docs/lm.md)
    c.train.steps = 1000
    c.train.batch_size = 16
    c.train.log_every = 250
    c.train.eval_every = 0
    c.train.eval_examples = 256             # train-set evaluation: a fixed subset (recall is on the test set)
    c.sweep.seeds = 2
    c.sweep.axes = ("model.attention=linear,retention,gla;model.d_model=8,16,32;"
                    "optim.lr=0.01,0.03")
    c.recall = ml_collections.ConfigDict(dict(  # this experiment's own section
        # softmax's own grid ("" = no softmax runs); single-valued axes act as overrides
        softmax_axes="model.num_heads=2;optim.lr=0.003,0.01",
    ))
    return c
