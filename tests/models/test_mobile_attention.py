"""The mobile (export) forms of attention match the training forms on the same weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mobilei2v_pipeline.models.attention import LinearAttention, SoftmaxAttention
from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid, get_preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.mobile_attention import (
    MobileLinearAttention,
    MobileSoftmaxAttention,
    _rms_norm,
    use_mobile_attention,
)
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser
from mobilei2v_pipeline.models.rope import rope_tables


@pytest.mark.parametrize(
    ("training", "mobile"),
    [(LinearAttention, MobileLinearAttention), (SoftmaxAttention, MobileSoftmaxAttention)],
)
def test_one_layer_matches_in_both_layouts(training, mobile):
    torch.manual_seed(0)
    config = DenoiserConfig(hidden_size=48, num_heads=4, rope_interpolation_scale=(1.0, 1.5, 2.5))
    grid, hidden, heads = LatentGrid(3, 4, 5), config.hidden_size, config.num_heads
    layer = training(hidden, heads)
    x = torch.randn(2, grid.tokens, hidden)
    cos, sin = rope_tables(grid, config.head_dim, config.rope_theta, config.rope_position_scale(grid))
    export = mobile(layer, grid, config)
    with torch.no_grad():
        expected = layer(x, cos, sin)
        torch.testing.assert_close(export(x), expected, atol=1e-5, rtol=1e-5)
        four_d = export.forward_4d(x.transpose(1, 2).unsqueeze(2))
    assert four_d.shape == (2, hidden, 1, grid.tokens)
    torch.testing.assert_close(four_d.squeeze(2).transpose(1, 2), expected, atol=1e-5, rtol=1e-5)


def _random_output_layer(model: MobileI2VDenoiser) -> MobileI2VDenoiser:
    """The output layer starts at zero (the untrained model predicts 0): give it weights so parity means
    something."""
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.5)
    return model.eval()


@pytest.mark.parametrize(
    ("preset", "grid"),
    [("tiny", LatentGrid(3, 8, 14)), ("paper", LatentGrid(3, 4, 6))],  # paper: its full blocks, a small grid
)
def test_the_whole_denoiser_matches_with_mobile_attention(preset: str, grid: LatentGrid):
    torch.manual_seed(0)
    config = dataclasses.replace(get_preset(preset).denoiser, latent_channels=16)
    model = _random_output_layer(MobileI2VDenoiser(config))
    latents = torch.randn(1, 16, grid.frames, grid.height, grid.width)
    timesteps, motion = torch.tensor([[0.0] + [0.7] * (grid.frames - 1)]), torch.tensor([2.0])
    parameters = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        expected = model(latents, timesteps, motion)
        use_mobile_attention(model, grid)
        mobile = model(latents, timesteps, motion)
    assert sum(p.numel() for p in model.parameters()) == parameters  # shared, not copied
    assert expected.abs().max() > 0.1
    assert (mobile - expected).abs().max() <= 1e-4
    assert all(type(b.attn).__name__.startswith("Mobile") for b in model.blocks)


@pytest.mark.parametrize(
    ("preset", "grid"),
    [("tiny", LatentGrid(3, 8, 14)), ("paper", LatentGrid(3, 4, 6))],
)
def test_the_channels_first_denoiser_matches(preset: str, grid: LatentGrid):
    torch.manual_seed(0)
    config = dataclasses.replace(get_preset(preset).denoiser, latent_channels=16)
    model = _random_output_layer(MobileI2VDenoiser(config))
    latents = torch.randn(2, 16, grid.frames, grid.height, grid.width)
    timesteps, motion = torch.rand(2, grid.frames), torch.tensor([2.0, 6.0])
    with torch.no_grad():
        expected = model(latents, timesteps, motion)
        mobile = MobileDenoiser(model, grid)(latents, timesteps, motion)
    assert (mobile - expected).abs().max() <= 1e-4


def test_the_linear_attention_stays_in_fp16_range_at_the_paper_s_token_count():
    """Core ML computes in fp16 (largest value 65504). The attention's normaliser summed over the paper's 2760
    tokens, sum_j <q_i, k_j> of non-negative features, leaves that range once q and k are a few units in
    size (here the norms' gains are 3); the mobile form works with means. Under fp16 autocast every product
    comes out in fp16, as on a phone: finite, and close to fp32."""
    torch.manual_seed(0)
    config = DenoiserConfig(hidden_size=96, num_heads=2)
    grid = get_preset("paper").latent_grid
    source = LinearAttention(config.hidden_size, config.num_heads)
    for norm in (source.q_norm, source.k_norm):
        torch.nn.init.constant_(norm.weight, 3.0)
    layer = MobileLinearAttention(source, grid, config).eval()
    x = torch.randn(1, config.hidden_size, 1, grid.tokens)
    with torch.no_grad():
        expected = layer.forward_4d(x)
        with torch.autocast("cpu", dtype=torch.float16):
            half = layer.forward_4d(x.half()).float()
        q, k, _ = layer._qkv(x)
        q, k = (
            layer._heads(_rms_norm(t, n, layer.channel_mean))
            for t, n in ((q, source.q_norm), (k, source.k_norm))
        )
        q, k = torch.relu(layer._rotate(q)), torch.relu(layer._rotate(k))
        summed = torch.bmm(k.sum(-1).unsqueeze(1), q)  # the summed form's normaliser, (B * heads, 1, S)
    assert summed.max() > 65504  # what fp16 cannot hold
    assert torch.isfinite(half).all()
    torch.testing.assert_close(half, expected, atol=0.02 * expected.abs().max().item(), rtol=0.02)
