"""Where curation's per-video work runs: in this process, in a pool of this machine's cores, or as Ray tasks
on a cluster; the results come back in a fixed order, at most a few ahead of the one being saved, so memory
holds the videos in flight and never the folder.

`curation.engine` picks it: `local` runs `curation.workers` processes (0: one per core; 1: here, no pool);
`ray` sends each video to the Ray cluster at `curation.ray.address` (`auto`, `ray://host:port`, or null for a
Ray started here with `curation.workers` CPUs). Every worker decodes and scores single-threaded, so N workers
use N cores, and a video's record is the same bytes whichever engine made it.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2

from mobilei2v_pipeline.datasets.video_record import VideoRecordDataset
from mobilei2v_pipeline.video.record import VideoRecord

logger = logging.getLogger(__name__)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _single_threaded() -> None:
    """A pool worker's set-up: OpenCV on one thread (the decoder is given one by the work itself)."""
    cv2.setNumThreads(1)


class OrderedResults:
    """`work(*jobs[key])` for each key, computed by `submit` at most `ahead` keys beyond the one asked for, in
    sorted key order (the order a PartitionedDataset saves in); `close` runs once the last result is taken."""

    def __init__(
        self,
        jobs: dict[Hashable, tuple],
        submit: Callable[..., Any],
        result: Callable[[Any], Any],
        ahead: int,
        close: Callable[[], None] = lambda: None,
    ):
        self._jobs, self._submit, self._result, self._ahead, self._close = jobs, submit, result, ahead, close
        self._order = sorted(jobs)
        self._position = {key: i for i, key in enumerate(self._order)}
        self._pending: dict[Hashable, Any] = {}
        self._submitted = 0

    def __call__(self, key: Hashable) -> Any:
        last = min(self._position[key] + self._ahead, len(self._order) - 1)
        while self._submitted <= last:
            name = self._order[self._submitted]
            self._pending[name] = self._submit(*self._jobs[name])
            self._submitted += 1
        value = self._result(self._pending.pop(key))
        if self._submitted == len(self._order) and not self._pending:
            self._close()
        return value


def ordered_results(
    work: Callable[..., Any], jobs: dict[Hashable, tuple], engine: str, workers: int, ray: dict[str, Any]
) -> OrderedResults:
    """The configured engine running `work` (a picklable, importable function) over `jobs`."""
    workers = workers or available_cores()
    if engine == "ray":
        return _on_ray(work, jobs, workers, ray)
    if engine != "local":
        raise ValueError(f"curation.engine {engine!r}: use local or ray")
    if workers == 1 or len(jobs) <= 1:
        return OrderedResults(jobs, lambda *args: args, lambda args: _here(work, args), ahead=0)
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_single_threaded)
    logger.info("curating %d videos on %d local worker processes", len(jobs), workers)
    handoffs = _handoff_folder()
    return OrderedResults(
        jobs,
        lambda *args: pool.submit(_handed_off, handoffs / f"{uuid.uuid4().hex}.safetensors", work, *args),
        Future.result,
        ahead=workers,
        close=pool.shutdown,
    )


def _handoff_folder() -> Path:
    """Where workers on this machine write their records for this process to move into place. Saving moves
    each file out; what a failed run leaves goes when this process ends."""
    folder = Path(tempfile.mkdtemp(prefix="mobilei2v-curation-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _handed_off(path: Path, work: Callable[..., VideoRecord], *args: Any) -> VideoRecord:
    """A pool worker's record, written by the worker to `path` and handed over as that file: the frames never
    travel through the parent process, which only moves the file into place when it saves the record."""
    return VideoRecordDataset(str(path)).handoff(work(*args))


def _here(work: Callable[..., Any], args: tuple) -> Any:
    """Run in this process, single-threaded like a pool worker, leaving OpenCV's threads as they were."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return work(*args)
    finally:
        cv2.setNumThreads(threads)


def _on_ray(work: Callable[..., Any], jobs: dict[Hashable, tuple], workers: int, settings: dict[str, Any]):
    import ray  # only when asked for: it takes seconds to import

    started_here = not ray.is_initialized()
    address = settings["address"]
    if started_here:
        options = {"runtime_env": settings["runtime_env"]} if settings["runtime_env"] else {}
        if address:
            ray.init(address=address, logging_level=logging.WARNING, **options)
        else:  # a Ray of our own on this machine
            ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, **options)
    cpus = ray.cluster_resources().get("CPU", workers)
    logger.info("curating %d videos as Ray tasks on a cluster of %g CPUs", len(jobs), cpus)
    per_task = settings["num_cpus_per_task"]
    task = ray.remote(num_cpus=per_task)(_single_threaded_work).options(name="curate_video")
    # Tasks of a Ray of our own share this machine's disk and hand their records over as files; a cluster's
    # nodes may not, so there the records travel through Ray's object store.
    handoffs = _handoff_folder() if not address else None

    def submit(*args: Any) -> Any:
        if handoffs is None:
            return task.remote(work, *args)
        return task.remote(_handed_off, handoffs / f"{uuid.uuid4().hex}.safetensors", work, *args)

    return OrderedResults(
        jobs,
        submit,
        ray.get,
        ahead=max(1, int(cpus // per_task)),
        close=ray.shutdown if started_here else (lambda: None),
    )


def _single_threaded_work(work: Callable[..., Any], *args: Any) -> Any:
    """A Ray task: the work on one thread, as in a local pool worker."""
    _single_threaded()
    return work(*args)
