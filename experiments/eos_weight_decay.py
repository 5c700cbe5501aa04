"""Edge of stability and weight decay (full-batch GD). Config: experiments/configs/eos_weight_decay.py.

    python -m experiments.eos_weight_decay --workdir runs/eos

Writes config.json, metrics.jsonl, summary.json (grid statistics, "eos" per run, tracking cost),
eos_sharpness.png, eos_loss.png, loss_curves.png and loss_bands.png, and prints the per-run table.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlab import cli, optim
from jaxlab import data as data_lib
from jaxlab.bench import timed
from jaxlab.eos import _r, eos_plots, eos_summary, format_table, sharpness_key
from jaxlab.experiment import run_grid, write_grid_outputs
from jaxlab.train import Compiled, default_hp, make_train

# What `python -m experiments` lists: the purpose, and the time on 2 CPU cores (docs/experiments.md).
PURPOSE = "Edge of stability and weight decay (full-batch GD)"
CPU_TIME = "~2.7 min (MLP), ~2 min (CNN)"


def curvature_cost(config, dataset=None, reps: int = 3) -> dict:
    """Time of curvature tracking against training for one run of ``config`` (jitted, median of reps).

    Times one chunk of train.log_every steps, a measurement without and with curvature; the fraction is
      n_curv · (t_measure_curv − t_measure) / (steps/log_every · t_chunk + n_curv · (t_measure_curv − t_measure))
    with n_curv the measurements a run makes. A vmapped sweep batches runs in both, so the one-run ratio stands
    for the sweep's.
    """
    dataset = dataset if dataset is not None else data_lib.get_dataset(config.data)
    trainer = make_train(config, dataset)
    fns = Compiled(trainer)
    hp = {k: jnp.float32(v) for k, v in default_hp(config).items()}
    data = trainer.device_data(dataset)
    state = fns.init(jax.random.PRNGKey(0), hp)
    n = config.train.log_every
    advance = jax.jit(trainer.advance, static_argnames="num_steps")  # not donated: the state is reused
    block = jax.block_until_ready
    t_chunk = timed(lambda: block(advance(state, hp, data, num_steps=n)), reps)
    t_plain = timed(lambda: block(fns.measure(state, hp, data, test=False, curvature=False)), reps)
    t_curv = timed(lambda: block(fns.measure(state, hp, data, test=False, curvature=True)), reps)
    steps, every = config.train.steps, config.curvature.every
    n_curv = (steps // every + 1 + (steps % every != 0)) if every else 0
    extra = max(t_curv - t_plain, 0.0)
    train = steps / n * t_chunk
    return {"curvature_time_fraction": _r(n_curv * extra / (train + n_curv * extra), 3),
            "curvature_s_per_measurement": _r(extra, 3), "train_s_per_step": _r(t_chunk / n, 3),
            "curvature_measurements_per_run": n_curv,
            "curvature_cost_in_steps": _r(extra / (t_chunk / n), 3)}


def write_eos_outputs(results, config, workdir: str, print_table: bool = True, title: str = "",
                      claim=None) -> dict:
    """The experiment's outputs: summary.json (grid summary + "eos" per run + tracking cost), eos_sharpness.png,
    eos_loss.png, loss_curves.png and loss_bands.png; prints the per-run table. Returns the summary.
    claim(eos rows) -> dict: an experiment's verdict on its claim, stored in summary.json under "claim"."""
    eos = eos_summary(results, config)
    if claim is not None:
        eos["claim"] = claim(eos["eos"])
    cost = curvature_cost(config) if config.curvature.every else {}
    what = {"preconditioned": "preconditioned sharpness vs its threshold",
            "zo_mean_square": "ZO effective sharpness vs 2/η"}.get(optim.declaration(config.optim).operator,
                                                                   "sharpness vs its threshold")
    eos_plots(results, config, workdir, title=title or f"{config.model.name}: {what} per weight decay")
    summary = write_grid_outputs(results, workdir, extra_summary={**eos, **cost},
                                 keys=("train_loss", sharpness_key(config), "test_accuracy"))
    if print_table:
        print(format_table(eos["eos"]))
        if cost:
            print(f"curvature tracking: {cost['curvature_time_fraction']:.1%} of the time "
                  f"({cost['curvature_cost_in_steps']:.3g} training steps per measurement)")
        if claim is not None:
            print(f"claim: {eos['claim']}")
    return summary


def main(config, workdir):
    results = run_grid(config, workdir)
    write_eos_outputs(results, config, workdir)


if __name__ == "__main__":
    cli.main(main, __file__)
