"""Wall-clock times of repeated calls, as every latency figure here is measured: untimed warm-up calls first
(a runtime's first run packs weights and allocates), then each timed call on its own."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def call_times_ms(call: Callable[[], object], repeats: int, warmup: int) -> np.ndarray:
    """Milliseconds of each of `repeats` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return np.array(times)
