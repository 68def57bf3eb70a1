"""The peak resident memory of a process and everything it starts, sampled while it runs."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import psutil


def tree_rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and all its descendants now, in MB."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def run_sampled(
    command: Sequence[str], cwd: Path, env: dict[str, str], log: IO, interval_s: float = 0.1
) -> tuple[int, float, float]:
    """Run `command` with its output to `log`; returns its exit code, wall seconds and the peak resident
    memory of its process tree in MB (sampled every `interval_s`)."""
    start = time.perf_counter()
    child = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    watched, peak, done = psutil.Process(child.pid), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mb(watched))
            time.sleep(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    done.set()
    sampler.join()
    return code, time.perf_counter() - start, peak[0]
