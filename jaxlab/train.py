"""Training as a pure function of ``(config, seed)``.

``make_train(config, dataset)`` returns a :class:`Trainer` of pure, jittable and vmappable pieces:

    state = trainer.init(key, hp)                          # hp: traced hyperparameters, e.g. {"optim.lr": 0.1}
    state, per_step = trainer.advance(state, hp, data, n)  # n steps in one lax.scan
    record = trainer.measure(state, hp, data, test=True, curvature=False)

Whatever a sweep varies arrives in ``hp`` (a dict of scalars keyed by config path), never read from the Python
config inside traced code, so ``jax.vmap`` over (key, hp) is one compiled program. :func:`run` drives these
pieces for one run: jitted chunks of ``train.log_every`` steps with donated state, the next chunk dispatched
before the last chunk's metrics are fetched, and nothing per step on the Python side.

A run whose loss becomes non-finite or exceeds ``train.divergence_factor`` × its initial loss stops updating
(its state is frozen) and is flagged ``diverged`` with the step; in a vmapped sweep the other runs go on unaffected.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab import data as data_lib
from jaxlab.data import batching
from jaxlab import losses, models, optim
from jaxlab.config import ConfigError, register_check, require, validate
from jaxlab.curvature.tracker import CARRY  # measure's output key for a warm-started tracker's next carry
from jaxlab.tree import tree_norm

PyTree = Any
EVAL_CHUNK = 2048  # examples per evaluation pass, bounding activation memory on large sets


@flax.struct.dataclass
class TrainState:
    step: jax.Array           # int32 []
    params: PyTree
    opt_state: PyTree
    key: jax.Array            # the run's data key (batch order); uint32 [2]
    ref_loss: jax.Array       # float32 []: the first step's loss, the scale of the blow-up test
    diverged: jax.Array       # bool []
    diverged_step: jax.Array  # int32 []: first step whose loss failed the test, -1 if none
    curv: PyTree = None       # the curvature tracker's warm-start carry (previous top eigenvectors), or None


def default_hp(config) -> dict[str, float]:
    """Hyperparameters traced by default: the ones every sweep in this codebase varies."""
    return {"optim.lr": float(config.optim.lr), "optim.weight_decay": float(config.optim.weight_decay)}


def _section(hp: dict, name: str) -> dict:
    prefix = name + "."
    return {k[len(prefix):]: v for k, v in hp.items() if k.startswith(prefix)}


@dataclasses.dataclass(frozen=True)
class Trainer:
    config: Any
    model: Any
    input_shape: tuple
    input_dtype: Any
    loss: Callable
    task: str
    tracker: Callable | None = None  # curvature measure(params, opt_state, lr, batch) -> dict

    # ---------------------------------------------------------------- pieces that read hp
    @property
    def total_steps(self) -> int:
        return self.config.train.steps

    def tx(self, hp) -> optax.GradientTransformation:
        return optim.make_optimizer(self.config.optim, self.total_steps, _section(hp, "optim"))

    def lr(self, hp, step):
        return optim.make_schedule(self.config.optim, self.total_steps, _section(hp, "optim"))(step)

    def default_hp(self) -> dict[str, float]:
        return default_hp(self.config)

    # ---------------------------------------------------------------- model and loss
    def apply(self, params, x):
        return self.model.apply({"params": params}, x)

    def loss_fn(self, params, batch):
        """batch = (x, y) -> scalar loss."""
        x, y = batch
        return self.loss(self.apply(params, x), y, self.config.loss.z_loss)

    def _loss_and_acc(self, params, batch):
        x, y = batch
        out = self.apply(params, x)
        return self.loss(out, y, self.config.loss.z_loss), losses.accuracy(out, y)

    def evaluate(self, params, x, y):
        """Mean loss and accuracy over x: [N, ...], in chunks of EVAL_CHUNK (padding is masked by label -1)."""
        n = x.shape[0]
        if n <= EVAL_CHUNK:
            return self._loss_and_acc(params, (x, y))
        chunks = -(-n // EVAL_CHUNK)
        pad = chunks * EVAL_CHUNK - n
        xp = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
        yp = jnp.pad(y, [(0, pad)] + [(0, 0)] * (y.ndim - 1), constant_values=-1)
        xs = xp.reshape(chunks, EVAL_CHUNK, *x.shape[1:])
        ys = yp.reshape(chunks, EVAL_CHUNK, *y.shape[1:])
        counts = jnp.sum((ys >= 0).reshape(chunks, -1), axis=1).astype(jnp.float32)
        loss, acc = jax.lax.map(lambda b: self._loss_and_acc(params, b), (xs, ys))
        w = counts / jnp.sum(counts)
        return jnp.sum(w * loss), jnp.sum(w * acc)

    # ---------------------------------------------------------------- pure training pieces
    def init(self, key, hp) -> TrainState:
        k_init, k_data = jax.random.split(key)
        params = self.model.init(k_init, jnp.zeros((1, *self.input_shape), self.input_dtype))["params"]
        init_carry = getattr(self.tracker, "init_carry", None)
        return TrainState(step=jnp.int32(0), params=params, opt_state=self.tx(hp).init(params), key=k_data,
                          ref_loss=jnp.float32(jnp.inf), diverged=jnp.bool_(False), diverged_step=jnp.int32(-1),
                          curv=init_carry(params) if init_carry else None)

    def batch(self, state: TrainState, data, perms=None):
        """This step's (x, y). perms: the chunk's epoch permutations (from ``advance``), else computed here."""
        bs = self.config.train.batch_size
        if bs == 0:
            return data["x_train"], data["y_train"]
        if perms is None:
            return data_lib.sample_batch(state.key, state.step, data["x_train"], data["y_train"], bs)
        return batching.batch_from_permutations(*perms, state.step, data["x_train"], data["y_train"], bs)

    def step(self, state: TrainState, hp, data, perms=None):
        """One optimiser step -> (state, metrics of this step: loss/accuracy on its batch, grad norm, lr)."""
        tx = self.tx(hp)
        (loss, acc), grads = jax.value_and_grad(self._loss_and_acc, has_aux=True)(state.params, self.batch(state, data, perms))
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        grad_norm = tree_norm(grads)

        ref_loss = jnp.where(state.step == 0, loss, state.ref_loss)
        factor = self.config.train.divergence_factor
        bad = ~jnp.isfinite(loss) | ~jnp.isfinite(grad_norm)
        if factor > 0:
            bad |= loss > factor * ref_loss
        frozen = state.diverged | bad
        keep = lambda new, old: jnp.where(frozen, old, new)  # noqa: E731 - freeze a diverged run
        new_state = state.replace(
            step=state.step + 1,
            params=jax.tree.map(keep, params, state.params),
            opt_state=jax.tree.map(keep, opt_state, state.opt_state),
            ref_loss=ref_loss,
            diverged=frozen,
            diverged_step=jnp.where(bad & ~state.diverged, state.step, state.diverged_step),
        )
        metrics = {"batch_loss": loss, "batch_accuracy": acc, "grad_norm": grad_norm, "lr": self.lr(hp, state.step)}
        return new_state, metrics

    def advance(self, state: TrainState, hp, data, num_steps: int):
        """num_steps optimiser steps in one lax.scan -> (state, per-step metrics: [num_steps] arrays)."""
        perms = None
        if self.config.train.batch_size:  # one sort per epoch touched, not one per step
            perms = batching.chunk_permutations(state.key, state.step, num_steps, data["x_train"].shape[0],
                                                self.config.train.batch_size)
        return jax.lax.scan(lambda s, _: self.step(s, hp, data, perms), state, None, length=num_steps)

    def measure(self, state: TrainState, hp, data, test: bool = True, curvature: bool = False) -> dict:
        """Metrics of the current parameters: train (and test) loss/accuracy, norms, and curvature when asked.

        A warm-started tracker's next carry comes back under ``CARRY``; :func:`drive` moves it into ``state.curv``."""
        p = state.params
        out = {}
        out["train_loss"], out["train_accuracy"] = self.evaluate(p, data["x_eval"], data["y_eval"])
        if test:
            out["test_loss"], out["test_accuracy"] = self.evaluate(p, data["x_test"], data["y_test"])
        out["param_norm"] = tree_norm(p)
        out["lr"] = self.lr(hp, state.step)
        out.update(optim.optim_metrics(p, state.opt_state, out["lr"], self.config.optim, _section(hp, "optim")))
        if curvature and self.tracker is not None:
            batch = (data["x_curv"], data["y_curv"])
            if state.curv is not None:
                out.update(self.tracker(p, state.opt_state, out["lr"], batch, state.curv))
            else:
                out.update(self.tracker(p, state.opt_state, out["lr"], batch))
        out["diverged"] = state.diverged
        return out

    def device_data(self, dataset) -> dict[str, jax.Array]:
        """Arrays passed to the jitted functions as arguments (closing over them would bake them in as constants)."""
        n_eval = self.config.train.eval_examples
        xe, ye = (dataset.x_train[:n_eval], dataset.y_train[:n_eval]) if n_eval else (dataset.x_train, dataset.y_train)
        d = {"x_train": dataset.x_train, "y_train": dataset.y_train, "x_eval": xe, "y_eval": ye,
             "x_test": dataset.x_test, "y_test": dataset.y_test}
        if self.tracker is not None:
            n_curv = getattr(self.config.curvature, "num_examples", 0)
            d["x_curv"], d["y_curv"] = (xe[:n_curv], ye[:n_curv]) if n_curv else (xe, ye)
        return jax.tree.map(jnp.asarray, d)


def make_train(config, dataset, batched: bool = False) -> Trainer:
    """Build the trainer's static structure (model, loss, tracker) from the config and the dataset's shapes.

    batched: the trainer will be vmapped over runs (a sweep); a model with a ``for_vmap()`` form that batches
    better over parameter sets (the CNN's im2col convolution) uses it. Same parameters, same function.
    """
    bs = config.train.batch_size
    if bs > len(dataset.x_train):
        raise ConfigError(f"config.train.batch_size={bs}: larger than the {len(dataset.x_train)} training examples")
    model = models.get_model(config.model, dataset)
    if batched and hasattr(model, "for_vmap"):
        model = model.for_vmap()
    loss = losses.get_loss(config.loss.name)
    trainer = Trainer(config=config, model=model, input_shape=dataset.input_shape,
                      input_dtype=dataset.x_train.dtype, loss=loss, task=dataset.task)
    if config.curvature.every > 0:
        from jaxlab.curvature.tracker import make_tracker

        trainer = dataclasses.replace(trainer, tracker=make_tracker(config, trainer.loss_fn))
    return trainer


# ------------------------------------------------------------------------------------------------
# the driver

@dataclasses.dataclass
class Result:
    config: Any
    seed: int
    state: TrainState
    records: list[dict]
    summary: dict
    per_step: dict | None = None  # key -> [steps] host array of every optimiser step (sweep(per_step_keys=...))


def to_python(tree):
    """Device scalars -> Python numbers (one device_get for the whole record)."""
    def conv(x):
        x = np.asarray(x)
        if x.dtype == np.float32:  # 7 significant digits: all a float32 holds, without repr noise
            return float(f"{x.item():.7g}") if x.ndim == 0 else [float(f"{v:.7g}") for v in x.ravel().tolist()]
        return x.item() if x.ndim == 0 else x.tolist()
    return jax.tree.map(conv, jax.device_get(tree))


def schedule_points(config) -> list[tuple[int, int]]:
    """(chunk_start, chunk_length) pairs covering train.steps in chunks of train.log_every."""
    steps, every = config.train.steps, config.train.log_every
    return [(s, min(every, steps - s)) for s in range(0, steps, every)]


def _flags(config, step: int) -> dict:
    steps = config.train.steps
    ev, cv = config.train.eval_every, config.curvature.every
    return {"test": ev == 0 or step % ev == 0 or step == steps,
            "curvature": cv > 0 and (step % cv == 0 or step == steps)}


class Compiled:
    """The jitted entry points of a trainer: state donated to ``advance``; flags and lengths are static."""

    def __init__(self, trainer: Trainer):
        self.init = jax.jit(trainer.init)
        self.advance = jax.jit(trainer.advance, static_argnames="num_steps", donate_argnums=0)
        self.measure = jax.jit(trainer.measure, static_argnames=("test", "curvature"))


def run(config, seed: int, *, hp: dict | None = None, writer=None, callbacks: Sequence[Callable] = (),
        initial_state: TrainState | None = None, dataset=None, progress: bool | None = None) -> Result:
    """Train one run to ``config.train.steps``; deterministic in (config, seed, hp).

    writer: optional ``jaxlab.io.MetricsWriter``; each record is written as soon as it is fetched.
    callbacks: ``cb(state, step, records)`` after every chunk, before the state is donated to the next one
      (checkpointing); ``records`` are those fetched so far.
    initial_state: resume from this state (its ``step`` says where); records start after it.
    """
    validate(config)
    dataset = dataset if dataset is not None else data_lib.get_dataset(config.data)
    trainer = make_train(config, dataset)
    hp = {**trainer.default_hp(), **(hp or {})}
    hp = {k: jnp.float32(v) for k, v in hp.items()}
    fns = Compiled(trainer)
    data = trainer.device_data(dataset)
    state = initial_state if initial_state is not None else fns.init(jax.random.PRNGKey(seed), hp)
    start = int(state.step)

    from jaxlab.io import Progress  # late: io imports matplotlib-free helpers only

    show = config.train.progress if progress is None else progress
    bar = Progress(total=config.train.steps, initial=start, enabled=show, desc=f"seed {seed}")
    records: list[dict] = []

    def on_fetch(step, per_step, rec):
        rec = make_record(step, per_step, rec)
        records.append(rec)
        if writer is not None:
            writer.write(rec)
        bar.update_to(step, rec)

    t0 = time.perf_counter()
    state = drive(config, fns, state, hp, data, on_fetch, start=start,
                  callbacks=[lambda s, step, cb=cb: cb(s, step, records) for cb in callbacks])
    bar.close()
    elapsed = time.perf_counter() - t0
    summary = summarize(records, state, elapsed)
    return Result(config=config, seed=seed, state=state, records=records, summary=summary)


def drive(config, fns, state, hp, data, on_fetch: Callable, *, start: int = 0, callbacks: Sequence[Callable] = (),
          fetch: Callable = jax.device_get):
    """The chunk loop shared by :func:`run` (one run) and ``jaxlab.sweep`` (vmapped runs) -> final state.

    fns: ``advance(state, hp, data, num_steps=)`` and ``measure(state, hp, data, test=, curvature=)``, jitted
    (``Compiled``, or their vmapped and sharded forms). The next chunk is dispatched before the previous chunk's
    metrics are fetched, so the host never stalls the device. on_fetch(step, per_step, record) receives host
    (numpy) trees: per_step is the chunk's per-step metrics (None for the initial measurement at step 0).
    callbacks: ``cb(state, step)`` after each chunk, before the state is donated to the next one.
    fetch: device -> host transfer (a multi-process sweep passes an all-gather).
    """
    pending: list[tuple[int, Any, Any]] = []

    def measure(state, step):
        """-> (record, state): a warm-started tracker's carry goes into the state (so checkpoints hold it too)."""
        rec = fns.measure(state, hp, data, **_flags(config, step))
        carry = rec.pop(CARRY, None)
        return rec, state if carry is None else state.replace(curv=carry)

    def emit():
        step, per_step, rec = pending.pop(0)
        rec, per_step = fetch((rec, per_step))
        on_fetch(step, per_step, rec)

    if start == 0:
        rec, state = measure(state, 0)
        pending.append((0, None, rec))
    for chunk_start, length in schedule_points(config):
        if chunk_start < start:
            continue
        state, per_step = fns.advance(state, hp, data, num_steps=length)
        end = chunk_start + length
        rec, state = measure(state, end)
        pending.append((end, per_step, rec))
        while len(pending) > 1:  # fetch the previous chunk while this one runs
            emit()
        for cb in callbacks:
            cb(state, end)
    while pending:
        emit()
    return state


def make_record(step: int, per_step, rec) -> dict:
    """One run's host metrics at ``step`` -> a JSON-ready record: the measurement plus, after a chunk, the last
    step's batch metrics (what the optimiser saw)."""
    rec, per_step = to_python((rec, per_step))
    if per_step is not None:
        rec.update({k: v[-1] for k, v in per_step.items() if k != "lr"})
    return {"step": step, **rec}


def summarize(records: list[dict], state: TrainState, elapsed: float) -> dict:
    last = records[-1] if records else {}
    final = {f"final_{k}": v for k, v in last.items() if k not in ("step", "diverged") and isinstance(v, (int, float))}
    return {"steps": last.get("step", 0), **final, "diverged": bool(state.diverged),
            "diverged_step": int(state.diverged_step), "wall_time_s": round(elapsed, 3)}


@register_check("train")
def check_train(config):
    t = config.train
    require(t.steps > 0, "train.steps", t.steps, "must be > 0")
    require(t.batch_size >= 0, "train.batch_size", t.batch_size, "must be >= 0 (0 = full batch)")
    require(t.log_every > 0, "train.log_every", t.log_every, "must be > 0")
    require(t.eval_every >= 0, "train.eval_every", t.eval_every, "must be >= 0")
    require(t.eval_examples >= 0, "train.eval_examples", t.eval_examples, "must be >= 0")
    require(t.divergence_factor >= 0, "train.divergence_factor", t.divergence_factor, "must be >= 0 (0 = off)")
    if t.eval_every:
        require(t.eval_every % t.log_every == 0, "train.eval_every", t.eval_every,
                f"must be a multiple of train.log_every={t.log_every}")
    cv = config.curvature.every
    require(cv >= 0, "curvature.every", cv, "must be >= 0 (0 = off)")
    if cv:
        require(cv % t.log_every == 0, "curvature.every", cv, f"must be a multiple of train.log_every={t.log_every}")
    optim.check_optim(config.optim, t.steps)
