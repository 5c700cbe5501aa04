"""Streaming checkpoint averaging: one checkpoint in memory at a time, accumulated in float32.

    steps = window_steps(available, window=8, interval=100)          # the 8 checkpoints ending at the latest
    params = merge_params(mngr, steps, coefficients("cosine", 8))    # Σ_j c_j θ_j
    out = merge_workdir(workdir, "cosine", window=8, evaluate=ev)    # merged checkpoint, summary.json (+ scores)

Peak host memory is the float32 accumulator plus the one checkpoint being read (about two copies of the
parameters) whatever the window: each restored copy is scaled in place, added, and dropped before the next is
read. A sweep chunk's checkpoint holds stacked parameters ([R, ...] leaves); the merge is elementwise, so the
same code merges every run of the chunk at once.
"""
from __future__ import annotations

import difflib
import json
import os
from typing import Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxlab.checkpoint import manager as mgr
from jaxlab.checkpoint.coefficients import SCHEMES, coefficients
from jaxlab.checkpoint.saver import checkpoint_dir, checkpoint_sets
from jaxlab.io import write_json


class MergeError(ValueError):
    """A merge request that cannot be served (names the offending value); raised before any compute."""


def window_steps(available, window: int, interval: int, end: int | None = None) -> list[int]:
    """The ``window`` checkpoint steps ``end − (window−1)·interval, …, end`` (oldest first); all must exist."""
    available = sorted(available)
    if not available:
        raise MergeError("no checkpoints to merge")
    end = available[-1] if end is None else end
    steps = [end - (window - 1 - j) * interval for j in range(window)]
    missing = [s for s in steps if s not in set(available)]
    if missing:
        raise MergeError(f"window={window} with interval={interval} ending at step {end} needs steps {steps}; "
                         f"missing {missing} (available: {available})")
    return steps


def merge_params(mngr, steps, coeffs):
    """Σ_j coeffs[j] · params(steps[j]) in float32, reading one checkpoint at a time -> float32 numpy pytree."""
    if len(steps) != len(coeffs):
        raise MergeError(f"{len(steps)} steps but {len(coeffs)} coefficients")
    acc = None
    for step, c in zip(steps, coeffs):
        if c == 0.0 and acc is not None:
            continue
        params = mgr.restore_params(mngr, step)
        leaves, treedef = jax.tree.flatten(params)
        del params
        if acc is None:
            acc = [np.zeros(x.shape, np.float32) for x in leaves]
        for i in range(len(leaves)):
            x = leaves[i].astype(np.float32, copy=False)
            leaves[i] = None                                # the restored copy goes as soon as it is used
            x *= np.float32(c)
            acc[i] += x
            del x
    return jax.tree.unflatten(treedef, acc)


def check_request(workdir: str, scheme: str, window: int, interval: int | None, end: int | None, decay: float):
    """Everything a merge needs, checked before any compute -> (config dict, {tag: steps}, coefficients)."""
    if not workdir or not os.path.isdir(workdir):
        raise MergeError(f"--workdir={workdir!r}: no such directory")
    if not os.path.exists(os.path.join(workdir, "config.json")):
        raise MergeError(f"--workdir={workdir!r}: no config.json (not a jaxlab run directory)")
    if scheme not in SCHEMES:
        hint = difflib.get_close_matches(str(scheme), list(SCHEMES), n=1)
        raise MergeError(f"--scheme={scheme!r}: unknown; choose from {sorted(SCHEMES)}"
                         + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    if not isinstance(window, int) or window < 1:
        raise MergeError(f"--window={window!r}: must be a positive integer")
    if scheme == "ema" and not 0.0 <= decay < 1.0:
        raise MergeError(f"--decay={decay!r}: must be in [0, 1)")
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    every = config.get("checkpoint", {}).get("every", 0)
    interval = interval or every
    if not interval or interval <= 0:
        raise MergeError(f"--interval={interval!r}: must be > 0 (the run's checkpoint.every is {every})")
    if every and interval % every:
        raise MergeError(f"--interval={interval}: must be a multiple of the run's checkpoint.every={every}")
    tags = checkpoint_sets(workdir)
    if not tags:
        raise MergeError(f"--workdir={workdir!r}: no checkpoints under {os.path.join(workdir, 'checkpoints')}")
    plan = {}
    for tag in tags:
        mngr = mgr.open_manager(checkpoint_dir(workdir, tag), read_only=True)
        try:
            plan[tag] = window_steps(mgr.valid_steps(mngr), window, interval, end)
        except MergeError as e:
            raise MergeError(f"--window={window}: {e} [{tag}]") from None
        finally:
            mngr.close()
    return config, plan, coefficients(scheme, window, decay=decay), interval


def merge_workdir(workdir: str, scheme: str, window: int, interval: int | None = None, end: int | None = None,
                  decay: float = 0.9, evaluate: Callable | None = None) -> dict:
    """Merge each checkpoint set of ``workdir`` (a run, or a sweep chunk's stacked runs) over its last ``window``
    checkpoints ``interval`` steps apart, save the result to workdir/merged/<name>/<tag>, and add it to
    summary.json under ``"merge"`` (atomic; other content kept).

    evaluate(params, stacked) -> {metric: value}: scores the merge against the last checkpoint (the run's
    ``jaxlab.evaluate.Evaluator``; None: no evaluation)."""

    workdir = os.path.abspath(workdir)
    config, plan, coeffs, interval = check_request(workdir, scheme, window, interval, end, decay)
    name = f"{scheme}-w{window}-i{interval}" + (f"-d{decay:g}" if scheme == "ema" else "")
    out = {"scheme": scheme, "window": window, "interval": interval, "coefficients": coeffs.tolist(),
           "duration_steps": (window - 1) * interval, "sets": {}}
    merged_sets = {}
    for tag, steps in plan.items():
        mngr = mgr.open_manager(checkpoint_dir(workdir, tag), read_only=True)
        try:
            merged = merge_params(mngr, steps, coeffs)
            last = mgr.restore_params(mngr, steps[-1]) if evaluate is not None else None
            meta = mgr.restore_meta(mngr, steps[-1])
        finally:
            mngr.close()
        merged_sets[tag] = (merged, last, meta)
    for tag, (merged, _, meta) in merged_sets.items():  # written only once every set has merged
        path = os.path.join(workdir, "merged", name, tag)
        ckptr = ocp.StandardCheckpointer()
        ckptr.save(path, merged, force=True)
        ckptr.wait_until_finished()
        out["sets"][tag] = {"steps": plan[tag], "path": os.path.relpath(path, workdir), "runs": meta.get("runs")}
    if evaluate is not None:
        for tag, (merged, last, meta) in merged_sets.items():
            stacked = "runs" in meta
            out["sets"][tag]["merged"] = evaluate(merged, stacked)
            out["sets"][tag]["last"] = evaluate(last, stacked)
    update_summary(workdir, name, out)
    return out


def update_summary(workdir: str, name: str, entry: dict) -> None:
    """summary.json["merge"][name] = entry, keeping everything else; written atomically."""
    path = os.path.join(workdir, "summary.json")
    summary = {}
    if os.path.exists(path):
        with open(path) as f:
            summary = json.load(f)
    summary.setdefault("merge", {})[name] = entry
    write_json(path, summary)
