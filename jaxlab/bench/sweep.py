"""Sweep benchmark: 8 seeds vmapped vs 8 sequential runs vs 1 run, for the MLP and the CNN of the EoS setting.

    python -m jaxlab.bench.sweep                      # MNIST-1D (1,000 examples), full-batch GD, MSE, 100 steps
    python -m jaxlab.bench.sweep --models=cnn --steps=200 --seeds=8

Three tables, each timed on the device JAX picks (CPU, or the GPU when there is one):
- gradient: one full-batch gradient of 1 parameter set vs ``vmap`` over the seeds' sets; for the CNN in its
  XLA-convolution form (what vmap of ``nn.Conv`` gives: grouped convolutions) and its im2col form (the sweep's).
- training (compiled): steady-state wall time per step through the shared chunk driver (logging and
  evaluation every 10 steps included) — 1 run, the seeds one after another, the seeds vmapped in one program.
  Compilation excluded. On CPU the XLA-convolution form runs only ``--xla-steps`` steps: inside ``lax.scan``
  XLA:CPU's convolution gradients take seconds per step (see jaxlab/models/cnn.py).
- end to end: a loop of ``run(config, seed)`` (each call compiles) vs one ``sweep(config, seeds)`` call.
"""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.bench import make_parser, timed
from jaxlab import data as data_lib
from jaxlab import optim
from jaxlab.models import model_config
from jaxlab.schema import base_config
from jaxlab.sweep import sweep
from jaxlab.sweep.batched import BatchedCompiled, make_mesh
from jaxlab.train import Compiled, drive, make_record, make_train, run


def eos_config(model: str, steps: int):
    """The edge-of-stability setting of experiments/configs/eos_weight_decay.py, with its MLP or a CNN."""
    c = base_config()
    c.data.name, c.data.num_train = "mnist1d", 1000
    c.model = model_config("cnn", channels=(32, 32), activation="relu") if model == "cnn" else model_config(
        "mlp", widths=(200, 200), activation="tanh")
    c.loss.name = "mse"
    c.optim.name, c.optim.lr = "sgd", 0.05
    c.train.steps, c.train.batch_size, c.train.log_every, c.train.progress = steps, 0, 10, False
    return c


def trainer_for(config, ds, form: str):
    """A trainer whose CNN uses ``form`` ("xla" | "gemm"); other models as built."""
    trainer = make_train(config, ds)
    if config.model.name != "cnn":
        return trainer
    return dataclasses.replace(trainer, model=trainer.model.clone(conv_impl=form))


FORMS = {"cnn": [("xla conv", "xla"), ("im2col", "gemm")], "mlp": [("", None)]}


def _per_run_records(n: int):
    """The host work of a sweep's fetch: one record per run."""
    def on_fetch(step, per_step, rec):
        take = lambda t, i: None if t is None else jax.tree.map(lambda x: x[i], t)  # noqa: E731
        for i in range(n):
            make_record(step, take(per_step, i), take(rec, i))
    return on_fetch


def _stack(trees):
    return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def bench_gradient(config, ds, seeds: int, repeats: int) -> list[tuple]:
    """Full-batch gradient: 1 parameter set vs vmap over ``seeds`` sets, per model form."""
    rows = []
    for form, impl in FORMS[config.model.name]:
        trainer = trainer_for(config, ds, impl)
        data = trainer.device_data(ds)
        batch = (data["x_train"], data["y_train"])
        init = jax.jit(lambda k: trainer.model.init(k, batch[0][:1])["params"])
        params = _stack([jax.device_get(init(jax.random.PRNGKey(s))) for s in range(seeds)])
        one = jax.tree.map(lambda x: jnp.asarray(x[0]), params)
        grad = jax.grad(trainer.loss_fn)
        g1 = jax.jit(grad)
        gv = jax.jit(jax.vmap(grad, in_axes=(0, None)))
        t1 = timed(lambda: jax.block_until_ready(g1(one, batch)), repeats * 5)
        tv = timed(lambda: jax.block_until_ready(gv(params, batch)), repeats * 5)
        rows.append((config.model.name, form, t1, tv))
    return rows


def bench_training(config, ds, seeds: int, repeats: int, xla_steps: int) -> list[tuple]:
    """Compiled training, seconds per step: 1 run, ``seeds`` runs in sequence, ``seeds`` runs vmapped."""
    rows = []
    mesh = make_mesh(jax.devices()[:1])
    base = config
    for form, impl in FORMS[config.model.name]:
        config = base
        if impl == "xla" and xla_steps != config.train.steps:
            config = base.copy_and_resolve_references()
            config.train.steps, repeats = xla_steps, 1
        steps = config.train.steps
        bt = trainer_for(config, ds, impl)
        fns = Compiled(bt)
        data = bt.device_data(ds)
        hp = optim.traced_numbers(config.optim)

        def one(seed):
            state = fns.init(jax.random.PRNGKey(seed), hp)
            jax.block_until_ready(drive(config, fns, state, hp, data, lambda *a: make_record(*a))[0])

        t1 = timed(lambda: one(0), repeats)
        tseq = timed(lambda: [one(s) for s in range(seeds)], 1, warmup=False)  # compiled by the line above
        bfns = BatchedCompiled(bt, mesh)
        keys = bfns.put_runs(np.stack([np.asarray(jax.random.PRNGKey(s)) for s in range(seeds)]))
        bhp = bfns.put_runs(jax.tree.map(lambda v: np.full(seeds, v), hp))

        def vm():
            jax.block_until_ready(drive(config, bfns, bfns.init(keys, bhp), bhp, data, _per_run_records(seeds))[0])

        rows.append((config.model.name, form, steps, t1 / steps, tseq / steps, timed(vm, repeats) / steps))
    return rows


def bench_end_to_end(config, ds, seeds: int) -> tuple:
    """What a user waits for: a loop of run() calls (each compiles its own program) vs one sweep() call."""
    t0 = time.perf_counter()
    for s in range(seeds):
        run(config, s, dataset=ds, progress=False)
    loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    sweep(config, seeds=seeds, dataset=ds, log=None)
    return config.model.name, loop, time.perf_counter() - t0


def parser():
    return make_parser(__doc__, models="mlp,cnn", seeds=8, steps=100, repeats=3, xla_steps=None, skip_end_to_end=False,
                       help={"xla_steps": "steps for the CNN's XLA-convolution form (default: 10 on CPU, else --steps)"})


def main(argv=None):
    args = parser().parse_args(argv)
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), jax {jax.__version__}; {args.seeds} seeds, "
          f"{args.steps} full-batch steps on 1,000 MNIST-1D examples\n")
    models = args.models.split(",")
    configs = {m: eos_config(m, args.steps) for m in models}
    ds = data_lib.get_dataset(configs[models[0]].data)
    n = args.seeds

    print(f"gradient (ms)           form                              1 set   vmap {n}   ratio")
    for m in models:
        for model, form, t1, tv in bench_gradient(configs[m], ds, n, args.repeats):
            print(f"  {model:20s}  {form:32s} {t1 * 1e3:7.2f}  {tv * 1e3:7.2f}  {tv / t1:5.1f}x")

    xla_steps = args.xla_steps or (10 if dev.platform == "cpu" else args.steps)
    print(f"\ntraining, compiled      form       steps   ms/step: 1 run  {n} sequential  {n} vmapped   vmapped/1"
          f"  seq/vmapped")
    for m in models:
        for model, form, steps, t1, tseq, tv in bench_training(configs[m], ds, n, args.repeats, xla_steps):
            print(f"  {model:20s}  {form:10s} {steps:5d}  {t1 * 1e3:14.1f}  {tseq * 1e3:12.1f}  {tv * 1e3:10.1f}"
                  f"  {tv / t1:9.1f}x  {tseq / tv:10.2f}x")

    if not args.skip_end_to_end:
        print(f"\nend to end (s, with compilation)   {n} x run()   sweep({n} seeds)   speed-up")
        for m in models:
            model, loop, sw = bench_end_to_end(configs[m], ds, n)
            print(f"  {model:32s} {loop:11.2f}  {sw:16.2f}  {loop / sw:8.2f}x")


if __name__ == "__main__":
    main()
