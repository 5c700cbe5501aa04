"""Saving and restoring a TrainState with ``orbax.checkpoint.CheckpointManager``.

    mngr = open_manager(directory, config.checkpoint)
    save(mngr, step, host_state)                 # async: returns once the write is queued
    step, state = restore_latest(mngr, template) # newest checkpoint that restores and verifies, else (None, None)
    params = restore_params(mngr, step)          # parameters only (the merger's one-at-a-time read)

A checkpoint has three orbax items: ``params`` (the parameter pytree as is, so it can be read alone),
``train`` (every other TrainState leaf: step, opt_state, key, ref_loss, diverged flags, as a flat dict
``{"000": leaf, ...}``, so optax's NamedTuples and empty states need no special handling) and ``meta`` (JSON:
step, a CRC32 of every leaf's bytes, and caller fields). orbax commits a step by renaming its temporary
directory, so a save killed midway leaves no step behind; the checksums catch what that cannot (a file
truncated or altered after the commit): a checkpoint that fails them is skipped with a warning, never loaded.
The data position needs no saving: a batch is a pure function of (state.key, state.step).
"""
from __future__ import annotations

import logging
import os
import time
import warnings
import zlib

import jax
import numpy as np
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)
ITEMS = ("params", "train", "meta")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, partial or fails its checksums."""


def open_manager(directory: str, ckpt_cfg=None, *, read_only: bool = False) -> ocp.CheckpointManager:
    """A CheckpointManager on ``directory`` with the config's retention: the latest ``keep_last`` steps plus
    every step that is a multiple of ``keep_every`` (0: none). ckpt_cfg None: keep everything (reading)."""
    keep_last = getattr(ckpt_cfg, "keep_last", 0) or None
    keep_every = getattr(ckpt_cfg, "keep_every", 0) or None
    # read_only: no directory creation, no clean-up; orbax's own read_only mode only adds log noise.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep_last, keep_period=keep_every, create=not read_only,
        enable_async_checkpointing=bool(getattr(ckpt_cfg, "async_save", True)),
        cleanup_tmp_directories=not read_only)  # leftovers of a killed save
    handlers = {"params": ocp.PyTreeCheckpointHandler(), "train": ocp.PyTreeCheckpointHandler(),
                "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_handlers=handlers)


def host_copy(tree):
    """Device arrays -> owned numpy copies (what is saved must not alias a buffer that is donated next)."""
    return jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(tree))


def crc(x: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(x).view(np.uint8).reshape(-1).data)


def split_state(state) -> tuple[dict, dict]:
    """TrainState (host) -> (params, {"000": leaf, ...} of everything else in flatten order)."""
    rest = jax.tree.leaves(state.replace(params=None))
    return state.params, {f"{i:03d}": np.asarray(x) for i, x in enumerate(rest)}


def join_state(template, params, train: dict):
    """Inverse of :func:`split_state`, using ``template`` (a TrainState of arrays or ShapeDtypeStructs)."""
    treedef = jax.tree.structure(template.replace(params=None))
    rest = jax.tree.unflatten(treedef, [train[k] for k in sorted(train)])
    return rest.replace(params=params)


def save(mngr: ocp.CheckpointManager, step: int, host_state, extra_meta: dict | None = None) -> None:
    """Queue the save of a host TrainState (numpy leaves, e.g. from :func:`host_copy`) at ``step``."""
    params, train = split_state(host_state)
    params = jax.tree.map(np.asarray, params)
    meta = {"step": int(step), **(extra_meta or {}),
            "crc_params": [crc(x) for x in jax.tree.leaves(params)],
            "crc_train": [crc(train[k]) for k in sorted(train)]}
    mngr.save(int(step), args=ocp.args.Composite(params=ocp.args.PyTreeSave(params),
                                                 train=ocp.args.PyTreeSave(train),
                                                 meta=ocp.args.JsonSave(meta)), force=True)


def _restore_numpy(mngr, step: int, item: str):
    """Restore one item as host numpy arrays (never onto an accelerator: merging and resume read on the host)."""
    tree = mngr.item_metadata(step)[item]
    tree = getattr(tree, "tree", tree)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    args = ocp.args.Composite(**{item: ocp.args.PyTreeRestore(restore_args=restore_args)})
    return mngr.restore(step, args=args)[item]


def restore_meta(mngr: ocp.CheckpointManager, step: int) -> dict:
    return mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta


def restore_params(mngr: ocp.CheckpointManager, step: int, meta: dict | None = None):
    """The parameters saved at ``step`` (numpy), checked against their checksums; raises CheckpointError."""
    try:
        meta = meta if meta is not None else restore_meta(mngr, step)
        params = _restore_numpy(mngr, step, "params")
    except Exception as e:  # orbax/tensorstore raise many types for a missing or torn file
        raise CheckpointError(f"checkpoint step {step} in {mngr.directory} cannot be read: {e}") from e
    if [crc(x) for x in jax.tree.leaves(params)] != meta.get("crc_params"):
        raise CheckpointError(f"checkpoint step {step} in {mngr.directory}: parameters fail their checksums")
    return params


def restore_raw(mngr: ocp.CheckpointManager, step: int):
    """(params, train dict, meta) at ``step``, verified; raises CheckpointError."""
    try:
        meta = restore_meta(mngr, step)
        train = _restore_numpy(mngr, step, "train")
    except Exception as e:
        raise CheckpointError(f"checkpoint step {step} in {mngr.directory} cannot be read: {e}") from e
    params = restore_params(mngr, step, meta)
    if [crc(train[k]) for k in sorted(train)] != meta.get("crc_train") or meta.get("step") != step:
        raise CheckpointError(f"checkpoint step {step} in {mngr.directory}: state fails its checksums")
    return params, train, meta


def restore_latest(mngr: ocp.CheckpointManager, template, max_step: int | None = None):
    """(step, host TrainState, meta) of the newest checkpoint that restores and verifies (≤ max_step), skipping
    bad ones with a warning; (None, None, None) when there is none."""
    for step in sorted(mngr.all_steps(), reverse=True):
        if max_step is not None and step > max_step:
            continue
        try:
            params, train, meta = restore_raw(mngr, step)
            state = join_state(template, params, train)
            _check_shapes(template, state, step)
            return step, state, meta
        except CheckpointError as e:
            warnings.warn(f"skipping checkpoint: {e}", RuntimeWarning, stacklevel=2)
            log.warning("skipping checkpoint: %s", e)
    return None, None, None


def _check_shapes(template, state, step):
    for (path, t), x in zip(jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(state)):
        if tuple(t.shape) != tuple(np.shape(x)) or np.dtype(t.dtype) != np.asarray(x).dtype:
            raise CheckpointError(f"checkpoint step {step}: {jax.tree_util.keystr(path)} has "
                                  f"{np.asarray(x).dtype}{list(np.shape(x))}, the run expects {t.dtype}{list(t.shape)}")


def quarantine(mngr: ocp.CheckpointManager, step: int) -> str:
    """Move a bad step aside (kept for inspection, invisible to orbax) so the resumed run can write it anew."""
    src = os.path.join(str(mngr.directory), str(step))
    dst = f"{src}.corrupt-{int(time.time())}"
    os.replace(src, dst)
    mngr.reload()
    warnings.warn(f"moved the unreadable checkpoint {src} to {dst}", RuntimeWarning, stacklevel=2)
    return dst


def valid_steps(mngr: ocp.CheckpointManager) -> list[int]:
    """Committed steps (orbax ignores uncommitted temporaries), oldest first; not checksum-verified."""
    return sorted(mngr.all_steps())
