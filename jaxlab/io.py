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
from typing import Iterable

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
    if overwrite and not resume:
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
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(_clean(obj), f, indent=2, sort_keys=False)
        f.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
    os.replace(tmp, path)


def write_config(workdir: str, config) -> None:
    write_json(os.path.join(workdir, "config.json"), config.to_dict())


def write_summary(workdir: str, summary) -> None:
    write_json(os.path.join(workdir, "summary.json"), summary)


class MetricsWriter:
    """Appends records to ``<workdir>/metrics.jsonl``; ``extra`` fields (e.g. run coordinates) go in every record."""

    def __init__(self, workdir: str, extra: dict | None = None, filename: str = "metrics.jsonl"):
        self.path = os.path.join(workdir, filename)
        self.extra = extra or {}
        self._f = open(self.path, "a")

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(_clean({**self.extra, **record})) + "\n")
        self._f.flush()

    def with_extra(self, extra: dict) -> "MetricsWriter":
        w = MetricsWriter.__new__(MetricsWriter)
        w.path, w.extra, w._f = self.path, {**self.extra, **extra}, self._f
        return w

    def close(self) -> None:
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
