"""ONNX Runtime on this machine: sessions from in-memory models, runs on named numpy inputs, sizes."""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from mobilei2v_pipeline.timing import call_times_ms


def session(
    model: onnx.ModelProto | Path,
    threads: int = 0,
    profile_prefix: str | None = None,
    optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
) -> ort.InferenceSession:
    """A CPU session of a model in memory or in a file (whose external weights are mapped, not copied);
    `threads` 0 lets ONNX Runtime choose, `profile_prefix` turns its profiler on, `optimization` caps its
    graph optimisations (all by default)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = optimization
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def sample(inputs: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """Sample i of named inputs stacked on axis 0, as a batch of one."""
    return {name: value[i : i + 1] for name, value in inputs.items()}


def by_precision(
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    quantized_models: dict[str, Callable[[], onnx.ModelProto]],
) -> dict[str, Callable[[], onnx.ModelProto]]:
    """Every exported graph as "<precision>/<graph>": the fp32 export's and the quantized ones' (whose
    partition keys already read so)."""
    return {f"fp32/{name}": load for name, load in onnx_models.items()} | dict(quantized_models)


def run(model: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The first output for one set of named inputs (cast to the model's float inputs)."""
    return model.run(None, {name: np.asarray(value, dtype=np.float32) for name, value in inputs.items()})[0]


def run_all(model: ort.InferenceSession, samples: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of every sample of named inputs stacked on axis 0, run one at a time (the graphs
    have batch 1), stacked the same way."""
    count = len(next(iter(samples.values())))
    return np.concatenate([run(model, sample(samples, i)) for i in range(count)])


def size_mb(model: onnx.ModelProto) -> float:
    return model.ByteSize() / 2**20


def time_runs(
    model: ort.InferenceSession, inputs: dict[str, np.ndarray], repeats: int, warmup: int = 2
) -> np.ndarray:
    """Milliseconds of `repeats` runs on the same inputs, after `warmup` untimed ones."""
    feed = {name: np.asarray(value, dtype=np.float32) for name, value in inputs.items()}
    return call_times_ms(lambda: model.run(None, feed), repeats, warmup)


def _status_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _peak_memory_mb(model: bytes, inputs: dict[str, np.ndarray], threads: int, runs: int) -> float:
    """In a fresh process: how far its peak resident memory rises above the level before the session while
    the session loads and runs the graph (ONNX Runtime allocates outside Python, and a process that ran
    other graphs reuses freed memory). The kernel's peak is reset first, so imports do not count."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    before = _status_kib("VmRSS")
    loaded = session(onnx.load_from_string(model), threads)
    time_runs(loaded, inputs, runs, warmup=1)
    return (_status_kib("VmHWM") - before) / 1024


def peak_memory_mb(model: onnx.ModelProto, inputs: dict[str, np.ndarray], threads: int, runs: int) -> float:
    """The peak memory a graph takes to load and run, measured in a spawned process (a clean one, not a copy
    of this one). Here, beside the sessions, because the spawned process imports this module only: under
    the pipelines' packages it would import torch and matplotlib first, 1.4 s of every measurement."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_peak_memory_mb, model.SerializeToString(), inputs, threads, runs).result()
