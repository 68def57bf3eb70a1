"""Attention: the linear form equals its quadratic definition and never builds an N x N matrix; softmax
attention equals PyTorch's; both compute in float32 whatever the input dtype or autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from mobilei2v_pipeline.models.attention import (
    LinearAttention,
    SoftmaxAttention,
    merge_heads,
    relu_linear_attention,
    split_heads,
)
from mobilei2v_pipeline.models.config import LatentGrid
from mobilei2v_pipeline.models.rope import apply_rope, rope_tables

GRIDS = [LatentGrid(1, 1, 1), LatentGrid(2, 3, 5), LatentGrid(3, 4, 6)]


class LargestTensor(TorchDispatchMode):
    """Records the most elements any op's output had."""

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, tuple | list) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.numel = max(self.numel, tensor.numel())
        return out


def quadratic_linear_attention(module: LinearAttention, x: torch.Tensor, grid: LatentGrid) -> torch.Tensor:
    """The same kernel by its definition, in float64: materialise the N x N kernel, normalise each row."""
    x, heads = x.double(), module.num_heads
    weight = module.qkv.weight.double()
    q, k, v = F.linear(x, weight).chunk(3, dim=-1)
    q = F.rms_norm(q, q.shape[-1:], module.q_norm.weight.double(), module.q_norm.eps)
    k = F.rms_norm(k, k.shape[-1:], module.k_norm.weight.double(), module.k_norm.eps)
    q, k, v = split_heads(q, heads), split_heads(k, heads), split_heads(v, heads)
    cos, sin = (t.double() for t in rope_tables(grid, q.shape[-1]))
    q, k = apply_rope(q, cos, sin).relu(), apply_rope(k, cos, sin).relu()  # RoPE, then the ReLU kernel
    kernel = q @ k.transpose(-2, -1)  # (B, h, N, N), >= 0
    out = merge_heads(kernel @ v / (kernel.sum(dim=-1, keepdim=True) + module.eps))
    return F.linear(out, module.proj.weight.double(), module.proj.bias.double())


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_linear_attention_equals_its_quadratic_definition(grid: LatentGrid) -> None:
    torch.manual_seed(0)
    module = LinearAttention(54, num_heads=3)  # head_dim 18
    with torch.no_grad():
        module.q_norm.weight.uniform_(0.5, 1.5)
        module.proj.bias.normal_()
    x = torch.randn(2, grid.tokens, 54)
    cos, sin = rope_tables(grid, 18)
    out = module(x, cos, sin)
    expected = quadratic_linear_attention(module, x, grid)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_linear_attention_never_builds_a_token_by_token_matrix() -> None:
    grid = LatentGrid(4, 32, 32)  # 4096 tokens
    cos, sin = rope_tables(grid, 6)
    x = torch.randn(1, grid.tokens, 12)
    with torch.no_grad(), LargestTensor() as linear_probe:
        out = LinearAttention(12, num_heads=2)(x, cos, sin)
    assert out.shape == x.shape
    assert linear_probe.numel <= 3 * grid.tokens * 12  # the qkv projection is the largest tensor
    # The probe does see quadratic tensors: softmax attention makes one per head.
    with torch.no_grad(), LargestTensor() as softmax_probe:
        SoftmaxAttention(12, num_heads=2)(x, cos, sin)
    assert softmax_probe.numel >= 2 * grid.tokens**2


def test_linear_attention_runs_at_twenty_thousand_tokens() -> None:
    grid = LatentGrid(5, 40, 100)
    cos, sin = rope_tables(grid, 6)
    with torch.no_grad():
        out = LinearAttention(12, num_heads=2)(torch.randn(1, grid.tokens, 12), cos, sin)
    assert out.shape == (1, 20000, 12) and torch.isfinite(out).all()


def _heads(dtype: torch.dtype, grid: LatentGrid) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(1)
    return tuple(torch.randn(2, 3, grid.tokens, 18).to(dtype) for _ in range(3))


def test_linear_attention_computes_in_float32_for_half_inputs() -> None:
    grid = LatentGrid(4, 16, 16)
    cos, sin = rope_tables(grid, 18)
    for dtype in (torch.bfloat16, torch.float16):
        q, k, v = _heads(dtype, grid)
        out = relu_linear_attention(q, k, v, cos, sin, eps=1e-8)
        assert out.dtype == torch.float32
        # Exactly what float32 gives on the same (rounded) inputs: nothing is summed in half precision.
        assert torch.equal(out, relu_linear_attention(q.float(), k.float(), v.float(), cos, sin, eps=1e-8))


class BatchedMatmulDtypes(TorchDispatchMode):
    """Records the dtypes of every batched matmul; in the attention layers only the core makes any."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.bmm.default:
            self.dtypes.update(a.dtype for a in args)
        return func(*args, **(kwargs or {}))


def test_linear_attention_core_ignores_autocast() -> None:
    grid = LatentGrid(2, 8, 8)
    cos, sin = rope_tables(grid, 18)
    q, k, v = _heads(torch.float32, grid)
    expected = relu_linear_attention(q, k, v, cos, sin, eps=1e-8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = relu_linear_attention(q, k, v, cos, sin, eps=1e-8)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("attention", [LinearAttention, SoftmaxAttention])
def test_attention_products_stay_float32_under_autocast(attention: type) -> None:
    grid = LatentGrid(2, 4, 4)
    cos, sin = rope_tables(grid, 18)
    layer = attention(54, num_heads=3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), BatchedMatmulDtypes() as probe:
        out = layer(torch.randn(2, grid.tokens, 54), cos, sin)
    assert out.dtype == torch.bfloat16  # the projections did run in bf16 ...
    assert probe.dtypes == {torch.float32}  # ... but every attention product in float32


@pytest.mark.parametrize("attention", [LinearAttention, SoftmaxAttention])
def test_bfloat16_layer_matches_float32_layer(attention: type) -> None:
    torch.manual_seed(2)
    grid = LatentGrid(2, 6, 6)
    cos, sin = rope_tables(grid, 18)
    layer = attention(54, num_heads=3)
    x = torch.randn(2, grid.tokens, 54)
    with torch.no_grad():
        expected = layer(x, cos, sin)
        out = layer.to(torch.bfloat16)(x.bfloat16(), cos, sin)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=5e-2, atol=5e-2 * expected.abs().max().item())


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_softmax_attention_equals_pytorch_attention_on_rotated_queries_and_keys(grid: LatentGrid) -> None:
    torch.manual_seed(3)
    module = SoftmaxAttention(54, num_heads=3)
    x = torch.randn(2, grid.tokens, 54)
    cos, sin = rope_tables(grid, 18)
    with torch.no_grad():
        q, k, v = (split_heads(t, 3) for t in module.qkv(x).chunk(3, dim=-1))
        core = F.scaled_dot_product_attention(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)
        expected = module.proj(merge_heads(core))
        torch.testing.assert_close(module(x, cos, sin), expected, rtol=1e-5, atol=1e-5)
        module.use_sdpa = True
        torch.testing.assert_close(module(x, cos, sin), expected, rtol=1e-5, atol=1e-5)
