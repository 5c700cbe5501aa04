"""Saving and restoring a TrainState with ``orbax.checkpoint.CheckpointManager``.

    mngr = open_manager(directory, config.checkpoint)
    save(mngr, step, host_state)                 # async: returns once the write is queued
    step, state, meta = restore_latest(mngr, template)  # newest checkpoint that restores and verifies, else Nones
    params = restore_params(mngr, step)          # parameters only (the merger's one-at-a-time read)

Layout. Every part of the state is a standard orbax PyTree item of NAMED nested dicts, so a checkpoint opens
without jaxlab (``ocp.StandardCheckpointer().restore(f"{directory}/{step}/opt_state")``):

* ``params``: the parameter tree as is (``{"Dense_0": {"kernel": ..., "bias": ...}, ...}``);
* ``opt_state``: the optimiser state with its own structure, NamedTuple fields and tuple indices as keys: optax
  ``adam`` is ``{"0": {"count": ..., "mu": <params' paths>, "nu": <params' paths>}}`` (its chain's second
  state, an ``EmptyState``, has no leaves and no key);
* ``train``: every other TrainState field by name: ``{"step", "key", "ref_loss", "diverged", "diverged_step"}``
  plus ``"curv"`` (the curvature carry's tree) when it is not None;
* ``meta`` (JSON): ``step``, ``format`` (2), caller fields, and ``crc``: ``{item: {leaf path: CRC32 of the leaf's
  bytes}}``, the leaf path being the item's keys joined by "/" (e.g. ``"0/nu/Dense_0/kernel"``).

The nested dict of a state is :func:`tree_to_dict` (the names of ``jax.tree_util``'s key paths, nested by
``orbax.checkpoint.tree``); only leaves are stored, so empty nodes (``None``, ``optax.EmptyState()``, ``()``) take
no space and an item with no leaves at all (e.g. the optimiser state of plain SGD) is not written. A restore maps
the stored leaves back onto the caller's template BY KEY PATH (not by flatten order), so empty nodes and NamedTuple
types come from the template and the restored state is bitwise the saved one. A sweep chunk's stacked state (a
leading run axis on every leaf) is saved and restored the same way.

orbax commits a step by renaming its temporary directory, so a save killed midway leaves no step behind; the
checksums catch what that cannot (a file truncated or altered after the commit): a checkpoint that fails them, or
cannot be read, or does not fit the template, is skipped with a warning, never loaded. Restores are host numpy
(never onto an accelerator). The data position needs no saving: a batch is a pure function of (state.key,
state.step).
"""
from __future__ import annotations

import os
import time
import warnings
import zlib

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxlab.distributed import barrier, is_writer
from jaxlab.faults import forgive_stray_callbacks
from jaxlab.tree import path_str

FORMAT = 2
STATE_ITEMS = ("params", "opt_state", "train")  # TrainState fields other than params/opt_state go to "train"
ITEMS = STATE_ITEMS + ("meta",)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, partial, fails its checksums or does not fit the template."""


def open_manager(directory: str, ckpt_cfg=None, *, read_only: bool = False) -> ocp.CheckpointManager:
    """A CheckpointManager on ``directory`` with the config's retention: the latest ``keep_last`` steps plus
    every step that is a multiple of ``keep_every`` (0: none). ckpt_cfg None: keep everything (reading)."""
    forgive_stray_callbacks()  # a failed read or write must not print orbax's closed-loop callbacks
    keep_last = getattr(ckpt_cfg, "keep_last", 0) or None
    keep_every = getattr(ckpt_cfg, "keep_every", 0) or None
    # read_only: no directory creation, no clean-up; orbax's own read_only mode only adds log noise.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep_last, keep_period=keep_every, create=not read_only,
        enable_async_checkpointing=bool(getattr(ckpt_cfg, "async_save", True)),
        cleanup_tmp_directories=not read_only)  # leftovers of a killed save
    handlers = {name: ocp.PyTreeCheckpointHandler() for name in STATE_ITEMS}
    handlers["meta"] = ocp.JsonCheckpointHandler()
    return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_handlers=handlers)


def host_copy(tree):
    """Device arrays -> owned numpy copies (what is saved must not alias a buffer that is donated next)."""
    return jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(tree))


def crc(x: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(x).view(np.uint8).reshape(-1).data)


# ------------------------------------------------------------------------------------------------ named trees

def _names(path) -> tuple[str, ...]:
    """A jax.tree_util key path -> the names of its entries (dict keys, NamedTuple/dataclass fields, indices)."""
    return tuple(path_str((k,)) for k in path)


def tree_to_dict(tree) -> dict:
    """A pytree -> nested dict of its leaves keyed by the names of their key paths (NamedTuple/dataclass fields,
    dict keys, tuple/list indices as strings; ``ocp.tree.from_flat_dict`` nests them). Empty nodes vanish; ``{}`` for
    a tree without leaves. A bare leaf is not a tree of named leaves and is refused."""
    flat = {_names(path): x for path, x in jax.tree_util.tree_leaves_with_path(tree)}
    if () in flat:
        raise TypeError("tree_to_dict needs a container, not a bare leaf")
    return ocp.tree.from_flat_dict(flat) if flat else {}


def dict_to_tree(template, nested: dict, what: str = "tree"):
    """Inverse of :func:`tree_to_dict`: ``template``'s structure with each leaf looked up in ``nested`` by its key
    path (``ocp.tree.to_flat_dict``). Raises CheckpointError when the paths differ (a leaf missing from, or left over
    in, ``nested``)."""
    flat = ocp.tree.to_flat_dict(nested)
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = [_names(path) for path, _ in paths]
    for n in names:
        if n not in flat:
            raise CheckpointError(f"{what}: no leaf at {'/'.join(n)}")
    extra = sorted("/".join(n) for n in set(flat) - set(names))
    if extra:
        raise CheckpointError(f"{what}: leaves the template does not have: {extra[:5]}")
    return jax.tree.unflatten(treedef, [flat[n] for n in names])


def state_items(state) -> dict[str, dict]:
    """A TrainState (or any dataclass/dict with ``params`` and ``opt_state``) -> {item: nested dict}: the
    ``params`` and ``opt_state`` subtrees, and every other field under ``train`` (``{}`` for an item without
    leaves)."""
    whole = tree_to_dict(state)
    return {"params": whole.pop("params", {}), "opt_state": whole.pop("opt_state", {}), "train": whole}


def _checksums(nested: dict) -> dict[str, int]:
    return {path: crc(x) for path, x in ocp.tree.to_flat_dict(nested, sep="/").items()}


# ------------------------------------------------------------------------------------------------ save

def save(mngr: ocp.CheckpointManager, step: int, host_state, extra_meta: dict | None = None,
         device_state=None) -> None:
    """Queue the save of a host TrainState (numpy leaves, e.g. from :func:`host_copy`) at ``step``.

    device_state: the same state as global jax.Arrays (a multi-process run): orbax's multi-host save writes
    those, every process its own shards (one copy of each, by replica id) into the shared directory; the host
    copy then only provides the checksums."""
    items = {k: jax.tree.map(np.asarray, v) for k, v in state_items(host_state).items()}
    meta = {"step": int(step), "format": FORMAT, **(extra_meta or {}),
            "crc": {k: _checksums(v) for k, v in items.items()}}
    if device_state is not None:
        items = state_items(device_state)
    args = {k: ocp.args.PyTreeSave(v) for k, v in items.items() if v}  # orbax refuses an empty item
    mngr.save(int(step), args=ocp.args.Composite(**args, meta=ocp.args.JsonSave(meta)), force=True)


# ------------------------------------------------------------------------------------------------ restore

def _restore_numpy(mngr, step: int, item: str):
    """Restore one item as host numpy arrays (never onto an accelerator: merging and resume read on the host)."""
    tree = mngr.item_metadata(step)[item]
    tree = getattr(tree, "tree", tree)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    args = ocp.args.Composite(**{item: ocp.args.PyTreeRestore(restore_args=restore_args)})
    return jax.tree.map(np.asarray, mngr.restore(step, args=args)[item])


def restore_meta(mngr: ocp.CheckpointManager, step: int) -> dict:
    return mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta


def _restore_item(mngr, step: int, item: str, meta: dict) -> dict:
    """One verified item as a nested dict of numpy arrays; ``{}`` for an item saved without leaves."""
    where = f"checkpoint step {step} in {mngr.directory}"
    sums = meta.get("crc")
    if not isinstance(sums, dict):
        raise CheckpointError(f"{where}: no checksums in its meta (format {meta.get('format', 1)}, "
                              f"this code reads format {FORMAT})")
    if item not in sums:
        raise CheckpointError(f"{where}: no item {item!r}")
    if not sums[item]:
        return {}
    try:
        tree = _restore_numpy(mngr, step, item)
    except Exception as e:  # orbax/tensorstore raise many types for a missing or torn file
        raise CheckpointError(f"{where} cannot be read: {e}") from e
    if _checksums(tree) != sums[item]:
        raise CheckpointError(f"{where}: {item} fails its checksums")
    return tree


def _meta(mngr, step: int) -> dict:
    try:
        meta = restore_meta(mngr, step)
    except Exception as e:
        raise CheckpointError(f"checkpoint step {step} in {mngr.directory} cannot be read: {e}") from e
    if meta.get("step") != step:
        raise CheckpointError(f"checkpoint step {step} in {mngr.directory}: its meta says step {meta.get('step')}")
    return meta


def restore_params(mngr: ocp.CheckpointManager, step: int, meta: dict | None = None):
    """The parameters saved at ``step`` (nested dict of numpy), checked against their checksums; raises
    CheckpointError."""
    meta = meta if meta is not None else _meta(mngr, step)
    return _restore_item(mngr, step, "params", meta)


def restore_raw(mngr: ocp.CheckpointManager, step: int) -> tuple[dict, dict]:
    """({item: nested dict of numpy} for params, opt_state and train, meta) at ``step``, verified; no template
    needed. Raises CheckpointError."""
    meta = _meta(mngr, step)
    return _restore_items(mngr, step, meta), meta


def _restore_items(mngr, step: int, meta: dict) -> dict[str, dict]:
    return {item: _restore_item(mngr, step, item, meta) for item in STATE_ITEMS}


def restore_latest(mngr: ocp.CheckpointManager, template, max_step: int | None = None, on_skip=None):
    """(step, host TrainState, meta) of the newest checkpoint that restores, verifies and fits ``template`` (a
    TrainState of arrays or ShapeDtypeStructs) (≤ max_step), skipping bad ones; (None, None, None) when there is
    none. on_skip(step, CheckpointError) hears of each bad one (default: a RuntimeWarning)."""
    for step in sorted(mngr.all_steps(), reverse=True):
        if max_step is not None and step > max_step:
            continue
        try:
            meta = _meta(mngr, step)
            items = _restore_items(mngr, step, meta)
            whole = {**items["train"], "params": items["params"], "opt_state": items["opt_state"]}
            state = dict_to_tree(template, whole, f"checkpoint step {step} in {mngr.directory}")
            _check_shapes(template, state, step)
            return step, state, meta
        except CheckpointError as e:
            if on_skip is not None:
                on_skip(step, e)
            else:
                warnings.warn(f"skipping checkpoint: {e}", RuntimeWarning, stacklevel=2)
    return None, None, None


def _check_shapes(template, state, step):
    for (path, t), x in zip(jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(state)):
        if tuple(t.shape) != tuple(np.shape(x)) or np.dtype(t.dtype) != np.asarray(x).dtype:
            raise CheckpointError(f"checkpoint step {step}: {jax.tree_util.keystr(path)} has "
                                  f"{np.asarray(x).dtype}{list(np.shape(x))}, the run expects {t.dtype}{list(t.shape)}")


def quarantine(mngr: ocp.CheckpointManager, step: int) -> str:
    """Move a bad step aside (kept for inspection, invisible to orbax) so the resumed run can write it anew;
    -> where it went."""
    src = os.path.join(str(mngr.directory), str(step))
    dst = f"{src}.corrupt-{step}"
    if is_writer():  # one process moves what all of them share
        if os.path.exists(dst):
            dst = f"{dst}-{int(time.time())}"
        os.replace(src, dst)
    barrier(f"quarantine {src}")
    mngr.reload()
    return dst


def valid_steps(mngr: ocp.CheckpointManager) -> list[int]:
    """Committed steps (orbax ignores uncommitted temporaries), oldest first; not checksum-verified."""
    return sorted(mngr.all_steps())
