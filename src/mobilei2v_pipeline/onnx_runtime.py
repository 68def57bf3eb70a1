"""ONNX Runtime on this machine: sessions from in-memory models, runs on named numpy inputs, sizes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def session(
    model: onnx.ModelProto | Path, threads: int = 0, profile_prefix: str | None = None
) -> ort.InferenceSession:
    """A CPU session of a model in memory or in a file (whose external weights are mapped, not copied);
    `threads` 0 lets ONNX Runtime choose, `profile_prefix` turns its profiler on."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
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
    for _ in range(warmup):
        model.run(None, feed)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.run(None, feed)
        times.append(1000 * (time.perf_counter() - started))
    return np.array(times)
