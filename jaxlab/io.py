"""Run outputs: the work directory, config.json, metrics.jsonl, summary.json, and progress.

metrics.jsonl holds one JSON record per logged step (per run, with its coordinates, in a sweep); it is
appended and flushed record by record, so a killed run keeps everything it logged.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import warnings
from typing import Callable, Iterable

from jaxlab.config import flatten
from jaxlab.distributed import is_writer
from jaxlab.faults import storage_errors

RESULT_FILES = ("config.json", "metrics.jsonl", "summary.json")


class WorkdirExistsError(FileExistsError):
    pass


def prepare_workdir(path: str, overwrite: bool = False, resume: bool = False) -> str:
    """Create ``path``; refuse to replace earlier results unless ``overwrite`` (or ``resume``) is set."""
    path = os.path.abspath(os.path.expanduser(path))
    existing = [f for f in RESULT_FILES if os.path.exists(os.path.join(path, f))]
    if existing and not (overwrite or resume):
        raise WorkdirExistsError(
            f"--workdir={path} already holds results ({', '.join(existing)}). Pass --overwrite to replace them, "
            f"--resume to continue from its checkpoints, or choose another --workdir.")
    if overwrite and not resume and is_writer():  # one process clears what all of them share
        for f in existing:
            os.remove(os.path.join(path, f))
        shutil.rmtree(os.path.join(path, "checkpoints"), ignore_errors=True)  # a fresh run's, not these
    os.makedirs(path, exist_ok=True)
    return path


def _clean(obj):
    """JSON-safe: NaN/inf become strings (JSON has no NaN), numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def write_json(path: str, obj) -> None:
    """Atomic write: a temporary file renamed over the target, so a crash never leaves half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    with storage_errors(path):
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(_clean(obj), f, indent=2, sort_keys=False)
                f.write("\n")
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)  # a write that failed midway (a full disk) leaves no temporary behind


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def write_config(workdir: str, config) -> None:
    if is_writer():
        write_json(os.path.join(workdir, "config.json"), config.to_dict())


def write_summary(workdir: str, summary) -> None:
    if is_writer():
        write_json(os.path.join(workdir, "summary.json"), summary)


def write_outputs(workdir: str, summary, files: dict[str, bytes] | None = None) -> list[str]:
    """An experiment's results in ``workdir``: summary.json and each of ``files`` ({name: bytes}, e.g. the PNGs of
    ``jaxlab.plots.draw``), written by process 0 only. -> the paths."""
    write_summary(workdir, summary)
    paths = [os.path.join(workdir, "summary.json")]
    for name, data in (files or {}).items():
        paths.append(os.path.join(workdir, name))
        if is_writer():
            with open(paths[-1], "wb") as f:
                f.write(data)
    return paths


class MetricsWriter:
    """Appends records to ``<workdir>/metrics.jsonl``; ``extra`` fields (e.g. run coordinates) go in every record.
    In a multi-process run only process 0 writes (the others hold the same records and drop them)."""

    def __init__(self, workdir: str, extra: dict | None = None, filename: str = "metrics.jsonl"):
        self.path = os.path.join(workdir, filename)
        self.extra = extra or {}
        self._f = open(self.path, "a") if is_writer() else None

    def write(self, record: dict) -> None:
        if self._f is None:
            return
        with storage_errors(self.path):
            self._f.write(json.dumps(_clean({**self.extra, **record})) + "\n")
            self._f.flush()

    def with_extra(self, extra: dict) -> "MetricsWriter":
        w = MetricsWriter.__new__(MetricsWriter)
        w.path, w.extra, w._f = self.path, {**self.extra, **extra}, self._f
        return w

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def read_metrics(workdir: str, filename: str = "metrics.jsonl") -> list[dict]:
    """All complete records (a torn last line from a killed process is skipped)."""
    out = []
    with open(os.path.join(workdir, filename)) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def normalise(obj):
    """``obj`` as it reads back from JSON (tuples as lists, NaN as strings): what metrics lines compare with."""
    return json.loads(json.dumps(_clean(obj)))


def cut_metrics(path: str, belongs: Callable[[dict], bool], last_step: int) -> list[dict]:
    """Drop this run's records after ``last_step`` (and a torn last line) from metrics.jsonl, in place; return
    this run's records up to ``last_step``. belongs(record): whether a record is this run's.

    The dropped lines are a suffix (this run was the last to write), so the file is truncated at the first of
    them: one syscall, and an appending writer that already holds the file keeps working.
    """
    if not os.path.exists(path):
        return []
    kept, cut, offset = [], None, 0
    with open(path, "rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if rec is None or (belongs(rec) and rec.get("step", -1) > last_step):
                if cut is None:
                    cut = offset
            elif cut is not None:
                warnings.warn(f"{path}: a record of another run follows this run's dropped records; "
                              "it is dropped with them", RuntimeWarning, stacklevel=2)
            elif belongs(rec):
                kept.append(rec)
            offset += len(line)
    if cut is not None and is_writer():
        with open(path, "r+b") as f:
            f.truncate(cut)
    return kept




# Keys that may differ between the run that wrote the checkpoints and the one resuming them.
RESUME_FREE = ("train.progress", "checkpoint.keep_last", "checkpoint.keep_every", "checkpoint.async_save")


def config_mismatch(config, workdir: str, free_prefixes: tuple[str, ...] = ()) -> str:
    """'' when ``config`` matches workdir/config.json up to RESUME_FREE and keys under ``free_prefixes`` (an
    experiment's post-hoc settings), else the differing keys and values."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return ""
    old = flatten(read_json(path))
    new = flatten(normalise(config.to_dict()))
    free = lambda k: k in RESUME_FREE or k.startswith(tuple(free_prefixes))  # noqa: E731
    keys = sorted(k for k in set(old) | set(new) if not free(k) and old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


class Progress:
    """A tqdm bar over steps with an ETA, updated once per fetched chunk (never per step)."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "",
                 keys: Iterable[str] = ("train_loss", "sharpness", "test_accuracy")):
        self.keys = tuple(keys)
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                            file=sys.stderr, leave=False)

    def update_to(self, step: int, record: dict) -> None:
        if self.bar is None:
            return
        self.bar.update(step - self.bar.n)
        post = {k: f"{record[k]:.4g}" for k in self.keys if isinstance(record.get(k), (int, float))}
        if post:
            self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
