"""The `onnxruntime` profiling backend: warm-run latency, the operators ONNX Runtime's profiler spends the
time in, and the peak memory a graph takes to load and run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from mobilei2v_pipeline import onnx_runtime


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
        "peak_memory_mb": onnx_runtime.peak_memory_mb(model, inputs, threads, settings["profiled_runs"]),
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
