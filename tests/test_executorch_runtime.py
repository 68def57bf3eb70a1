"""The ExecuTorch runtime helpers on real lowered programs: the delegation figures, folding, loading."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from executorch.runtime import Program
from torch import nn

from mobilei2v_pipeline import executorch_runtime
from mobilei2v_pipeline.models.mobile_attention import linear_as_conv1x1


class _TwoConvolutions(nn.Module):
    """Two 1x1 convolutions of the same size: one with constant weights (XNNPACK takes it), one whose weights
    depend on the input (XNNPACK does not)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 8, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight)
        return F.conv2d(y, self.weight * x.amax())


def test_the_delegated_share_counts_multiply_accumulates_inside_and_outside_the_delegate():
    inputs = {"x": np.random.default_rng(0).standard_normal((1, 8, 4, 4)).astype(np.float32)}
    with torch.no_grad():
        lowered = executorch_runtime.lower(_TwoConvolutions().eval(), inputs)
    figures = executorch_runtime.delegation(lowered)
    assert figures["delegated_mac_fraction"] == pytest.approx(0.5)
    assert "convolution x1" in figures["non_delegated_ops"]


class _LinearAsConvolution(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_as_conv1x1(x, self.linear)  # the weight is reshaped in the graph


def test_a_weight_reshaped_in_the_graph_is_folded_so_the_whole_program_is_delegated():
    graph, inputs = _LinearAsConvolution().eval(), {"x": np.ones((1, 8, 1, 6), np.float32)}
    with torch.no_grad():
        lowered = executorch_runtime.lower(graph, inputs)
        expected = graph(torch.as_tensor(inputs["x"])).numpy()
    assert executorch_runtime.delegation(lowered) == {"delegated_mac_fraction": 1.0, "non_delegated_ops": ""}
    method = executorch_runtime.load(executorch_runtime.to_executorch(lowered))
    np.testing.assert_allclose(executorch_runtime.run(method, inputs), expected, atol=1e-5)


def test_a_loaded_method_outlives_the_bytes_it_was_loaded_from():
    graph, inputs = _LinearAsConvolution().eval(), {"x": np.ones((1, 8, 1, 6), np.float32)}
    with torch.no_grad():
        program = executorch_runtime.to_executorch(executorch_runtime.lower(graph, inputs))
        method = executorch_runtime.load(program)
        del program
        expected = graph(torch.as_tensor(inputs["x"])).numpy()
    gc.collect()
    # ExecuTorch's Method does not keep its Program; one freed under it crashes the process (seen on the
    # denoiser), though a program this small may still run: so check that the method holds it.
    assert any(isinstance(o, Program) for o in gc.get_referents(vars(method)))
    np.testing.assert_allclose(executorch_runtime.run(method, inputs), expected, atol=1e-5)


class _Conditioned(nn.Module):
    """A token path (a 1x1 convolution of the latents) modulated by a condition path: an embedding of a
    scalar and its projection."""

    def __init__(self):
        super().__init__()
        self.token = nn.Conv2d(8, 8, 1)
        self.embedding = nn.Linear(1, 64)
        self.modulation = nn.Linear(64, 8)

    def forward(self, latents: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale = self.modulation(F.silu(self.embedding(condition[:, None])))
        return self.token(latents) * (1 + scale[:, :, None, None])


def test_the_8_bit_program_quantizes_the_latents_path_and_the_named_modules_and_keeps_the_rest_float():
    torch.manual_seed(0)
    graph = _Conditioned().eval()
    rng = np.random.default_rng(0)
    calibration = [
        {"latents": rng.standard_normal((1, 8, 4, 4)).astype(np.float32), "condition": np.float32([c])}
        for c in (0.1, 0.5, 0.9)
    ]
    with torch.no_grad():
        lowered = executorch_runtime.lower_8bit(graph, calibration, ["latents"], ["modulation"])
        expected = graph(*(torch.as_tensor(v) for v in calibration[1].values())).numpy()
    program = executorch_runtime.to_executorch(lowered)
    assert executorch_runtime.delegation(lowered)["delegated_mac_fraction"] == 1.0

    def stored_in_float(layer: nn.Module) -> bool:
        return layer.weight.detach().numpy().astype(np.float32).tobytes()[:32] in program

    assert stored_in_float(graph.embedding)  # left alone
    assert not stored_in_float(graph.modulation) and not stored_in_float(graph.token)  # int8 weights
    output = executorch_runtime.run(executorch_runtime.load(program), calibration[1])
    assert np.abs(output - expected).max() < 0.05 * np.abs(expected).max()
