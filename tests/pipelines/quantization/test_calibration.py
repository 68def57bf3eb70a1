"""The streamed MinMax calibration gives ONNX Runtime's ranges, whatever the memory budget per pass (to float
rounding: ONNX Runtime calibrates an unoptimised graph, the passes here run the optimised one, whose fused
kernels round differently)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnxruntime import quantization as ort_quant
from onnxruntime.quantization.calibrate import create_calibrator

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.pipelines.quantization.calibration import calibrated_tensors, groups, minmax_ranges


class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)).softmax(dim=1))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calibration")
    torch.manual_seed(0)
    program = torch.onnx.export(_Small().eval(), (torch.randn(1, 3, 16, 16),), input_names=["x"], dynamo=True)
    onnx.save(program.model_proto, folder / "source.onnx", save_as_external_data=True, location="w")
    ort_quant.quant_pre_process(folder / "source.onnx", folder / "prepared.onnx", skip_symbolic_shape=True)
    return folder / "prepared.onnx"


SAMPLES = {"x": np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)}


def _samples():
    return (onnx_runtime.sample(SAMPLES, i) for i in range(3))


class _Reader(ort_quant.CalibrationDataReader):
    def __init__(self):
        self._samples = _samples()

    def get_next(self):
        return next(self._samples, None)


@pytest.mark.parametrize("budget_mb", [0.001, 1024])  # a pass per tensor, and one pass for all
def test_the_ranges_are_onnx_runtimes_min_max_ranges(prepared: Path, tmp_path: Path, budget_mb: float):
    op_types = ["Conv", "Relu", "Softmax"]
    ours = minmax_ranges(prepared, _samples, op_types, budget_mb)
    calibrator = create_calibrator(prepared, op_types, augmented_model_path=str(tmp_path / "augmented.onnx"))
    calibrator.collect_data(_Reader())
    theirs = calibrator.compute_data()
    assert set(ours.data) == set(theirs.data) and len(ours.data) >= 4
    for name, expected in theirs.data.items():
        np.testing.assert_allclose(ours.data[name].range_value, expected.range_value, rtol=1e-5, atol=1e-6)


def test_tensors_are_grouped_in_graph_order_within_the_budget(prepared: Path):
    sizes = calibrated_tensors(onnx.load(prepared), None)
    assert next(iter(sizes)) == "x" and all(size > 0 for size in sizes.values())
    budget = max(sizes.values()) + 1
    cut = groups(sizes, budget)
    assert [name for group in cut for name in group] == list(sizes)
    assert all(sum(sizes[n] for n in group) <= budget for group in cut)
