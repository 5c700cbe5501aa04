"""The trainer: the pure, jittable and vmappable pieces of a run, built from the config by ``make_train``.

    hp = optim.traced_numbers(config.optim)                # traced numbers: Numbers(lr=..., weight_decay=...)
    state = trainer.init(key, hp)
    state, per_step = trainer.advance(state, hp, data, n)  # n steps in one lax.scan
    record = trainer.measure(state, hp, data, test=True, curvature=False)

Whatever a sweep varies arrives in ``hp`` (:class:`jaxlab.optim.Numbers`, keyed by the optimiser's field names;
None where the config's number is used), never read from the Python config inside traced code, so ``jax.vmap``
over (key, hp) is one compiled program. Each piece resolves the run's numbers once (``optim.resolve``) and hands
them to everything that reads them. The loop that drives these pieces is :mod:`jaxlab.train.loop`.

A run whose loss becomes non-finite or exceeds ``train.divergence_factor`` × its initial loss stops updating
(its state is frozen) and is flagged ``diverged`` with the step; in a vmapped sweep the other runs go on unaffected.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxlab import data as data_lib
from jaxlab import losses, models, optim
from jaxlab.config import ConfigError
from jaxlab.curvature.tracker import Tracker, make_tracker
from jaxlab.data import batching
from jaxlab.tree import tree_norm

PyTree = Any
EVAL_CHUNK = 2048  # examples per evaluation pass, bounding activation memory on large sets
ZO_STREAM = 0x7A0  # fold_in tag of the zeroth-order directions' keys (distinct from the batch order's)


@flax.struct.dataclass
class TrainState:
    step: jax.Array           # int32 []
    params: PyTree
    opt_state: PyTree
    key: jax.Array            # the run's data key (batch order); uint32 [2]
    ref_loss: jax.Array       # float32 []: the first step's loss, the scale of the blow-up test
    diverged: jax.Array       # bool []
    diverged_step: jax.Array  # int32 []: first step whose loss failed the test, -1 if none
    curv: PyTree = None       # the curvature tracker's carry (previous top eigenvectors for a warm start), or None


@dataclasses.dataclass(frozen=True)
class Trainer:
    config: Any
    model: Any
    input_shape: tuple
    input_dtype: Any
    loss: Callable
    task: str
    declared: Any = None             # the optimiser's dynamics (jaxlab.optim.declaration)
    tracker: Tracker | None = None   # curvature, every curvature.every steps (jaxlab.curvature.tracker)

    # ---------------------------------------------------------------- pieces that read the numbers
    @property
    def total_steps(self) -> int:
        return self.config.train.steps

    def numbers(self, hp) -> optim.Numbers:
        """The run's optimiser numbers: hp's traced fields over the config's (the one resolution per call)."""
        return optim.resolve(self.config.optim, hp)

    def tx(self, numbers: optim.Numbers) -> optax.GradientTransformation:
        return optim.make_optimizer(self.config.optim, self.total_steps, numbers)

    def optimizer_step(self, numbers: optim.Numbers) -> optim.Step:
        """The real step's functions (update, the gradient it uses, frozen form) at ``numbers``."""
        return optim.make_step(self.config.optim, self.total_steps, numbers)

    def lr(self, numbers: optim.Numbers, step):
        return optim.make_schedule(self.config.optim, self.total_steps, numbers)(step)

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
        opt_state = self.tx(self.numbers(hp)).init(params)
        return TrainState(step=jnp.int32(0), params=params, opt_state=opt_state, key=k_data,
                          ref_loss=jnp.float32(jnp.inf), diverged=jnp.bool_(False), diverged_step=jnp.int32(-1),
                          curv=self.tracker.init(params) if self.tracker is not None else None)

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
        numbers = self.numbers(hp)
        tx = self.tx(numbers)
        batch = self.batch(state, data, perms)
        if self.declared is not None and self.declared.zeroth_order:  # the step's own estimate replaces ∇L
            loss, acc = self._loss_and_acc(state.params, batch)
            key = jax.random.fold_in(jax.random.fold_in(state.key, ZO_STREAM), state.step)  # not the batch stream
            grads = self.optimizer_step(numbers).gradient(lambda p: self.loss_fn(p, batch), state.params, key)
        else:
            (loss, acc), grads = jax.value_and_grad(self._loss_and_acc, has_aux=True)(state.params, batch)
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
        metrics = {"batch_loss": loss, "batch_accuracy": acc, "grad_norm": grad_norm,
                   "lr": self.lr(numbers, state.step)}
        return new_state, metrics

    def advance(self, state: TrainState, hp, data, num_steps: int):
        """num_steps optimiser steps in one lax.scan -> (state, per-step metrics: [num_steps] arrays)."""
        perms = None
        if self.config.train.batch_size:  # one sort per epoch touched, not one per step
            perms = batching.chunk_permutations(state.key, state.step, num_steps, data["x_train"].shape[0],
                                                self.config.train.batch_size)
        return jax.lax.scan(lambda s, _: self.step(s, hp, data, perms), state, None, length=num_steps)

    def measure(self, state: TrainState, hp, data, test: bool = True, curvature: bool = False):
        """Metrics of the current parameters -> (record, next curvature carry or None): train (and test) loss and
        accuracy, norms, and the tracker's quantities when asked (the carry goes into ``state.curv``: loop.drive)."""
        p = state.params
        numbers = self.numbers(hp)
        out = {}
        out["train_loss"], out["train_accuracy"] = self.evaluate(p, data["x_eval"], data["y_eval"])
        if test:
            out["test_loss"], out["test_accuracy"] = self.evaluate(p, data["x_test"], data["y_test"])
        out["param_norm"] = tree_norm(p)
        out["lr"] = self.lr(numbers, state.step)
        out.update(optim.optim_metrics(p, state.opt_state, out["lr"], self.config.optim, numbers))
        carry = None  # unchanged unless measured: returning state.curv would copy it out of every measurement
        if curvature and self.tracker is not None:
            def track(p, opt_state, numbers, lr, batch, curv, t):
                step = self.optimizer_step(numbers) if self.tracker.needs_step else None
                return self.tracker(p, opt_state, numbers._replace(lr=lr), batch, curv, t=t, step=step)

            if self.tracker.loops_runs():  # vmap over runs becomes a loop: each run's Lanczos stops on its own
                track = jax.custom_batching.sequential_vmap(track)
            rec, carry = track(p, state.opt_state, numbers, out["lr"], (data["x_curv"], data["y_curv"]), state.curv,
                               state.step)
            out.update(rec)
        out["diverged"] = state.diverged
        return out, carry

    def device_data(self, dataset) -> dict[str, jax.Array]:
        """Arrays passed to the jitted functions as arguments (closing over them would bake them in as constants)."""
        n_eval = self.config.train.eval_examples
        xe, ye = (dataset.x_train[:n_eval], dataset.y_train[:n_eval]) if n_eval else (dataset.x_train, dataset.y_train)
        d = {"x_train": dataset.x_train, "y_train": dataset.y_train, "x_eval": xe, "y_eval": ye,
             "x_test": dataset.x_test, "y_test": dataset.y_test}
        if self.tracker is not None:
            n_curv = self.config.curvature.num_examples
            d["x_curv"], d["y_curv"] = (xe[:n_curv], ye[:n_curv]) if n_curv else (xe, ye)
        return jax.tree.map(jnp.asarray, d)


def make_train(config, dataset, batched: bool = False, data_shards: int = 1) -> Trainer:
    """Build the trainer's static structure (model, loss, tracker) from the config and the dataset's shapes.

    batched: the trainer will be vmapped over runs (a sweep); a model with a ``for_vmap()`` form that batches
    better over parameter sets (the CNN's im2col convolution) uses it. Same parameters, same function.
    data_shards: how many pieces the examples are split into (``jaxlab.mesh.num_shards``): a chunked HVP takes
    its chunks within each piece.
    """
    bs = config.train.batch_size
    if bs > len(dataset.x_train):
        raise ConfigError(f"config.train.batch_size={bs}: larger than the {len(dataset.x_train)} training examples")
    model = models.get_model(config.model, dataset)
    if batched and hasattr(model, "for_vmap"):
        model = model.for_vmap()
    declared = optim.declaration(config.optim)
    trainer = Trainer(config=config, model=model, input_shape=dataset.input_shape,
                      input_dtype=dataset.x_train.dtype, loss=losses.get_loss(config.loss.name), task=dataset.task,
                      declared=declared)
    if config.curvature.every > 0:
        tracker = make_tracker(config, trainer.loss_fn, declared=declared, apply_fn=trainer.apply,
                               decay_mask=optim.decay_mask(config.optim.wd_mask), loss_kind=config.loss.name,
                               data_shards=data_shards)
        trainer = dataclasses.replace(trainer, tracker=tracker)
    return trainer
