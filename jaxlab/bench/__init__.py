"""Benchmarks that print ratio tables against a reference measured in the same run (``python -m jaxlab.bench.X``)."""
from __future__ import annotations

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
