"""The ExecuTorch runtime helpers on real lowered programs: the delegation figures, folding, loading."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from executorch.runtime import Program
from torch import nn

from mobilei2v_pipeline import executorch_runtime
from mobilei2v_pipeline.models.config import LatentGrid, get_preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.mobile_attention import linear_as_conv1x1
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser
from mobilei2v_pipeline.psnr import psnr_db


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


def test_an_8_bit_program_quantizes_the_token_path_and_leaves_the_condition_path_float():
    """A small denoiser (the tiny preset's width, two blocks) through PT2E and XNNPACK's quantizer: one
    delegate with every multiply-accumulate and no slice left outside it, int8 weights, close to fp32."""
    config = dataclasses.replace(get_preset("tiny").denoiser, depth=2, softmax_blocks=(1,))
    grid = LatentGrid(2, 4, 6)
    torch.manual_seed(0)
    model = MobileI2VDenoiser(config)
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.05)
    graph = MobileDenoiser(model.eval(), grid).eval()
    rng = np.random.default_rng(0)

    def inputs() -> dict[str, np.ndarray]:
        shape = (1, config.latent_channels, grid.frames, grid.height, grid.width)
        timesteps = np.array([[0.0, rng.uniform(0.2, 1.0)]], np.float32)
        return {
            "latents": rng.standard_normal(shape).astype(np.float32),
            "timesteps": timesteps,
            "motion": rng.uniform(1, 8, 1).astype(np.float32),
        }

    calibration, test = [inputs() for _ in range(4)], inputs()
    with torch.no_grad():
        fp32 = executorch_runtime.to_executorch(executorch_runtime.lower(graph, test))
        lowered = executorch_runtime.lower_8bit(graph, iter(calibration), quantized_from=["latents"])
    figures = executorch_runtime.delegation(lowered)
    edge = lowered.exported_program().graph
    quantized = [n for n in edge.nodes if "quantize_per" in str(n.target)]
    assert figures["delegated_mac_fraction"] == 1.0 and "slice" not in figures["non_delegated_ops"]
    assert not quantized  # every quantize node went into the delegate with the ops it feeds
    program = executorch_runtime.to_executorch(lowered)
    # The token path's weights (blocks, patch embedding, output layer) went from 4 bytes to 1.
    token_path = [model.blocks, model.patch_embed, model.final_layer.linear]
    weights = sum(p.numel() for part in token_path for p in part.parameters() if p.ndim > 1)
    assert len(program) < len(fp32) - 0.7 * 3 * weights
    got = executorch_runtime.run(executorch_runtime.load(program), test)
    want = executorch_runtime.run(executorch_runtime.load(fp32), test)
    assert psnr_db(got, want) > 30
    # The condition path is float: the timestep embedder's weights are in the program as fp32 bytes.
    weight = model.timestep_embedder.mlp[0].weight.detach().numpy().astype(np.float32).tobytes()
    assert weight[:64] in program
