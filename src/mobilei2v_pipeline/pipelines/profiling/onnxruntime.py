"""The `onnxruntime` profiling backend: warm-run latency, the operators ONNX Runtime's profiler spends the
time in, and the peak memory a graph takes to load and run."""

from __future__ import annotations

import json
import multiprocessing
import re
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from mobilei2v_pipeline import onnx_runtime


def _status_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _peak_memory_mb(model: bytes, inputs: dict[str, np.ndarray], threads: int, runs: int) -> float:
    """In a fresh process: how far its peak resident memory rises above the level before the session while
    the session loads and runs the graph (ONNX Runtime allocates outside Python, and a process that ran
    other graphs reuses freed memory). The kernel's peak is reset first, so imports do not count."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    before = _status_kib("VmRSS")
    session = onnx_runtime.session(onnx.load_from_string(model), threads)
    onnx_runtime.time_runs(session, inputs, runs, warmup=1)
    return (_status_kib("VmHWM") - before) / 1024


def peak_memory_mb(model: onnx.ModelProto, inputs: dict[str, np.ndarray], threads: int, runs: int) -> float:
    context = multiprocessing.get_context("spawn")  # a clean process, not a copy of this one
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_peak_memory_mb, model.SerializeToString(), inputs, threads, runs).result()


def profile_graph(
    model: onnx.ModelProto, samples: dict[str, np.ndarray], settings: dict[str, Any]
) -> tuple[dict[str, float], pd.DataFrame, np.ndarray]:
    """On the first of `samples` (inputs stacked on axis 0): latency over warm runs (median, p90, in a
    session without the profiler), peak memory while a session loads and runs, the time per operator type
    from a profiled session; and the outputs of every sample."""
    threads, inputs = settings["threads"], onnx_runtime.sample(samples, 0)
    session = onnx_runtime.session(model, threads)
    times = onnx_runtime.time_runs(session, inputs, settings["repeats"], settings["warmup"])
    outputs = onnx_runtime.run_all(session, samples)
    figures = {
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "min_ms": float(times.min()),
        "peak_memory_mb": peak_memory_mb(model, inputs, threads, settings["profiled_runs"]),
        "runs": len(times),
    }
    return figures, operator_times(model, inputs, threads, settings["profiled_runs"]), outputs


def operator_times(
    model: onnx.ModelProto, inputs: dict[str, np.ndarray], threads: int, runs: int
) -> pd.DataFrame:
    """Per operator type: total ms over `runs` profiled runs (after one warm-up), share of the kernel time,
    and how many nodes of that type ran, largest first."""
    with tempfile.TemporaryDirectory() as tmp:
        session = onnx_runtime.session(model, threads, profile_prefix=str(Path(tmp) / "ort"))
        onnx_runtime.time_runs(session, inputs, runs, warmup=1)
        events = json.loads(Path(session.end_profiling()).read_text())
    kernels = [
        {"op_type": e["args"]["op_name"], "node": e["name"], "ms": e["dur"] / 1000}
        for e in events
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
    ]
    table = pd.DataFrame(kernels, columns=["op_type", "node", "ms"])
    grouped = table.groupby("op_type").agg(ms=("ms", "sum"), nodes=("node", "nunique"))
    grouped["ms"] /= runs + 1  # per run
    grouped["share"] = grouped["ms"] / grouped["ms"].sum()
    return grouped.sort_values("ms", ascending=False).reset_index()
