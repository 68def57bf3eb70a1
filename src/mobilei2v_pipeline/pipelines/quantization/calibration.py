"""MinMax calibration that streams: the ranges ONNX Runtime's MinMax calibrator computes, in bounded memory.

ONNX Runtime's calibrator makes every calibrated tensor an extra output of one augmented session, and a run
of it keeps them all alive: for the paper denoiser at 2760 tokens that is more memory than a 24 GB machine
has. Here the tensors are observed a group at a time (groups of at most `budget_mb` of activations, sized
from the shape-inferred graph), each group by a session whose extra outputs are that group, over every
calibration sample; the weights stay in one external-data file that every session maps. The result is the
per-tensor minimum and maximum over the samples, as ONNX Runtime's `MinMax` computes them, handed to its
quantizer as a calibration cache.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

from mobilei2v_pipeline import onnx_runtime

logger = logging.getLogger(__name__)
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}


def calibrated_tensors(model: onnx.ModelProto, op_types: Sequence[str] | None) -> dict[str, int]:
    """The tensors ONNX Runtime's MinMax calibrator observes (float inputs and outputs of the nodes of
    `op_types`, or of every node; initializers excluded; shapes from the model's value infos), with their
    size in bytes (0 where a shape is unknown)."""
    infos = {v.name: v for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]}
    initializers = {init.name for init in model.graph.initializer}
    sizes: dict[str, int] = {}
    for node in model.graph.node:
        if op_types and node.op_type not in op_types:
            continue
        for name in [*node.input, *node.output]:
            info = infos.get(name)
            if info is None or name in initializers or not info.type.HasField("tensor_type"):
                continue
            tensor = info.type.tensor_type
            if tensor.elem_type in FLOATS:
                dims = [d.dim_value for d in tensor.shape.dim]
                sizes[name] = int(np.prod(dims)) * 4 if all(dims) else 0
    return sizes


def groups(sizes: dict[str, int], budget_bytes: int) -> list[list[str]]:
    """The tensors in graph order, cut into consecutive groups of at most `budget_bytes` (a tensor larger than
    the budget is a group of its own)."""
    out: list[list[str]] = [[]]
    used = 0
    for name, size in sizes.items():
        if out[-1] and used + size > budget_bytes:
            out.append([])
            used = 0
        out[-1].append(name)
        used += size
    return out


def minmax_ranges(
    model_path: Path,
    samples: Callable[[], Iterable[dict[str, np.ndarray]]],
    op_types: Sequence[str] | None,
    budget_mb: float,
    threads: int = 0,
) -> TensorsData:
    """Per-tensor (min, max) over every sample `samples()` yields, for the tensors ONNX Runtime's MinMax
    calibrator would observe in the shape-inferred model at `model_path` (its weights in external data)."""
    model = onnx.load(model_path, load_external_data=False)
    sizes = calibrated_tensors(model, op_types)
    batches = groups(sizes, int(budget_mb * 2**20))
    logger.info(
        "Calibrating %d tensors (%.1f GB per sample) in %d passes of at most %.0f MB",
        len(sizes),
        sum(sizes.values()) / 2**30,
        len(batches),
        budget_mb,
    )
    low: dict[str, np.ndarray] = {}
    high: dict[str, np.ndarray] = {}
    for number, names in enumerate(batches):
        observed = copy.deepcopy(model)  # the graph only: the weights stay in their external file
        observed.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in names)
        path = model_path.with_name(f".observe-{number}.onnx")
        onnx.save(observed, path)
        try:
            session = onnx_runtime.session(path, threads)
            for feed in samples():
                for name, value in zip(names, session.run(names, feed), strict=True):
                    # (1,) float32, as ONNX Runtime's reductions give them
                    low[name] = np.fmin(low.get(name, np.inf), np.nanmin(value, keepdims=True).ravel())
                    high[name] = np.fmax(high.get(name, -np.inf), np.nanmax(value, keepdims=True).ravel())
            del session
        finally:
            path.unlink(missing_ok=True)
    ranges = {name: TensorData(lowest=low[name], highest=high[name]) for name in sizes}
    return TensorsData(CalibrationMethod.MinMax, ranges)
