"""The gen_eos Kendall grid at paper scale, for an accelerator: 6 learning rates × 4 batch sizes × 5 seeds = 120
runs of minibatch SGD on a tanh MLP 40-32-10 (1,642 parameters: the dense per-map SVD still fits), MNIST-1D
(4,000 training examples), 20,000 steps, the sharpness dimension averaged over 32 sampled maps at the end.

    python -m experiments.gen_eos --config=experiments/configs/gen_eos_paper.py --workdir runs/gen_eos_paper

The sweep puts runs on the mesh's ``runs`` axis (mesh.runs = 0: every device), one compiled program per batch
size (a structural axis), the learning rates and seeds vmapped inside it; sweep.chunk_size bounds the runs per
program where memory is short (each run holds 32 dense 1,642² Jacobians at its final measurement, sequentially).

CPU time: not for a CPU (hours)
"""
from experiments.configs.gen_eos import get_config as small


def get_config():
    c = small()
    c.data.num_train = 0
    c.model.widths = (32,)
    c.train.steps = 20_000
    c.train.log_every = 500
    c.train.eval_every = 2_000
    c.curvature.every = 20_000
    c.curvature.num_examples = 2_000               # the curvature set: 2,000 of the training examples
    c.curvature.dim_samples = 32
    c.curvature.trace_samples = 32
    c.curvature.slq_iters = 96
    c.sweep.seeds = 5
    c.sweep.axes = "optim.lr=0.05,0.1,0.2,0.4,0.6,0.8;train.batch_size=32,64,128,256"
    c.mesh.runs = 0
    return c
