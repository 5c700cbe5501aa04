"""MQAR recall vs state size at the scale of Zoology's Figure 2 (Arora et al. 2023), for a GPU/TPU.

    python -m experiments.mqar_recall --config=experiments/configs/mqar_recall_paper.py --workdir runs/mqar_paper
    ... --config.data.seq_len=512 --config.model.max_len=512    # Zoology's longest sequences

Vocabulary 8,192, sequences of 256 tokens, trained on a mixture of 16, 32 and 64 key-value pairs and measured at
each, 2-layer LMs of width 64-512 with one head (state d_model² + 9·d_model per layer for the linear kinds), the
CPU config's mixers (short convolution of 4 taps, retention and gla without output gate, gla's gate bias 3;
--config.model.output_gate=True --config.model.gate_bias_init=0 gives the papers' forms), 100,000 training
sequences, ~50 epochs of AdamW (batch 256, 20,000 steps, cosine), 3 seeds × 4 lrs (Zoology's logspace(-4, -2, 4);
traced: one program per group), the best lr per point; recall on 1,024 held-out sequences. Zoology's own generator:
keys and values from split halves of the vocabulary (harmless at 8,192 tokens) and its power-law query placement
with noise tokens. 4 kinds × 4 widths = 16 structural groups (softmax's through recall.softmax_axes). Evaluation
logits are [2,048, 256, 8,192] per chunk and run: keep train.eval_examples and data.num_test small.

CPU time: not for a CPU (hours per group)
"""
from experiments.configs.mqar_recall import get_config as small


def get_config():
    c = small()
    c.data.seq_len = 256
    c.data.vocab_size = 8192
    c.data.num_kv_pairs = 64
    c.data.kv_pairs_mix = (16, 32, 64)
    c.data.num_examples = 100_000
    c.data.num_test = 1024
    c.data.kv_pool = "split"
    c.data.queries = "zoology"
    c.model.max_len = 256
    c.model.num_heads = 1
    c.optim.lr = 1e-3
    c.optim.weight_decay = 0.1
    c.optim.schedule.warmup_steps = 1000
    c.train.steps = 20_000
    c.train.batch_size = 256
    c.train.log_every = 500
    c.train.eval_every = 2000
    c.train.eval_examples = 1024
    c.sweep.seeds = 3
    lrs = "optim.lr=0.0001,0.00046,0.0022,0.01"
    c.sweep.axes = f"model.attention=linear,retention,gla;model.d_model=64,128,256,512;{lrs}"
    c.recall.softmax_axes = f"model.d_model=64,128,256,512;{lrs}"
    return c
