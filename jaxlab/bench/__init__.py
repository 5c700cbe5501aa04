"""Benchmarks that print ratio tables against a reference measured in the same run (``python -m jaxlab.bench.X``)."""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable


def timed(fn: Callable[[], object], repeats: int, warmup: bool = True,
          reduce: Callable[[list[float]], float] = statistics.median) -> float:
    """Seconds of ``fn()`` (which must block on its result) over ``repeats`` calls after a warm-up call
    (compilation), reduced by ``reduce``: the median, or ``min`` on a shared machine, where other processes only
    ever add time."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return reduce(times)


def make_parser(doc: str, help: dict | None = None, **defaults) -> argparse.ArgumentParser:
    """Flags from keyword defaults: ``--name`` (underscores as dashes) typed like its default (str for None,
    a switch for False); the description is the docstring's first paragraph."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    for name, value in defaults.items():
        flag, text = "--" + name.replace("_", "-"), (help or {}).get(name)
        if value is False:
            p.add_argument(flag, action="store_true", help=text)
        else:
            p.add_argument(flag, type=type(value) if value is not None else int, default=value, help=text)
    return p
