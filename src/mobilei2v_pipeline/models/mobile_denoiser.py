"""The whole denoiser in its export form: every activation of the token path is (B, C, 1, S).

Latents (B, C, T, H, W) are already channels-first with time-major cells, so they become (B, C, 1, S) by a
view; the patch embedding, the attention projections, the Mix-FFN's pointwise layers and the output layer
are 1x1 convolutions; the per-frame modulation broadcasts over a (B, C, T, H * W) view; the Mix-FFN's
per-frame 3x3 depthwise convolution is a depthwise Conv2d on a (B, C * T, H, W) view; the LayerNorms'
channel means are 1x1 convolutions with constant weights (`ChannelMean`). So outside attention the heavy path
has views but no transposes (attention: mobile_attention.py); the small condition embeddings (B, T, 6, C) are
permuted once for all blocks, and each block adds its table as a constant in that layout. Weights are the
trained model's, shared (`MobileDenoiser` holds the model; `use_mobile_attention` swaps its attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid
from mobilei2v_pipeline.models.denoiser import (
    DenoiserBlock,
    MobileI2VDenoiser,
    absolute_velocity,
    first_frame_residual,
)
from mobilei2v_pipeline.models.mobile_attention import (
    ChannelMean,
    channel_slices,
    conv1x1_parts,
    linear_as_conv1x1,
    use_mobile_attention,
    weight_slices,
)


def _layer_norm(x: torch.Tensor, eps: float, mean: ChannelMean) -> torch.Tensor:
    """LayerNorm without affine over the channels of (B, C, 1, S)."""
    centred = x - mean(x)
    return centred * torch.rsqrt(mean(centred * centred) + eps)


def _channels_first(table: torch.Tensor) -> torch.Tensor:
    """Condition vectors (B, T, k, C) -> (B, k * C, T, 1), to broadcast over a (B, C, T, H * W) view."""
    batch, frames, parts, channels = table.shape
    return table.permute(0, 2, 3, 1).reshape(batch, parts * channels, frames, 1)


def _with_table(modulation: torch.Tensor, table: torch.Tensor) -> list[torch.Tensor]:
    """A block's modulation, (B, k * C, T, 1) plus its learned (k, C) table, as k tensors (B, C, T, 1)."""
    return channel_slices(modulation + table.reshape(-1, 1, 1), table.shape[0])


class MobileDenoiser(nn.Module):
    """`MobileI2VDenoiser` for one static grid, in the export layout; same inputs and outputs."""

    def __init__(self, model: MobileI2VDenoiser, grid: LatentGrid):
        super().__init__()
        self.model = use_mobile_attention(model, grid)
        self.grid = grid
        self.channel_mean = ChannelMean(model.config.hidden_size)

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        model, grid = self.model, self.grid
        batch, channels = latents.shape[:2]
        frames, cells = grid.frames, grid.height * grid.width
        if timesteps.ndim == 1:
            timesteps = timesteps.unsqueeze(1).expand(batch, frames)
        timestep_embedding, modulation = model.timestep_embedder(timesteps)  # (B, T, C), (B, T, 6, C)
        # one permute for all blocks; each block's table is a constant added in this layout
        modulation = _channels_first(modulation + model.motion_embedder(motion)[1].unsqueeze(1))
        residual = model.config.first_frame_residual
        inputs = first_frame_residual(latents, timesteps) if residual else latents
        x = linear_as_conv1x1(inputs.reshape(batch, channels, 1, frames * cells), model.patch_embed)
        for block in model.blocks:
            x = self._block(block, x, _with_table(modulation, block.scale_shift_table))
        final = model.final_layer
        embedding = _channels_first(timestep_embedding.unsqueeze(2))  # (B, C, T, 1), for both shift and scale
        shift, scale = (embedding + row.reshape(-1, 1, 1) for row in final.scale_shift_table)
        h = self._modulate(_layer_norm(x, final.norm.eps, self.channel_mean), shift, scale)
        velocity = linear_as_conv1x1(h, final.linear).view(batch, -1, frames, grid.height, grid.width)
        return absolute_velocity(velocity, latents) if residual else velocity

    def _modulate(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Per-frame modulation of (B, C, 1, S), through a (B, C, T, H * W) view."""
        frames = x.view(x.shape[0], x.shape[1], self.grid.frames, -1)
        return (frames * (1 + scale) + shift).view_as(x)

    def _gate(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return (x.view(x.shape[0], x.shape[1], self.grid.frames, -1) * gate).view_as(x)

    def _block(self, block: DenoiserBlock, x: torch.Tensor, modulation: list[torch.Tensor]) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = modulation
        h = self._modulate(_layer_norm(x, block.norm1.eps, self.channel_mean), shift_a, scale_a)
        x = x + self._gate(block.attn.forward_4d(h), gate_a)
        h = self._modulate(_layer_norm(x, block.norm2.eps, self.channel_mean), shift_f, scale_f)
        return x + self._gate(self._ffn(block, h), gate_f)

    def _ffn(self, block: DenoiserBlock, h: torch.Tensor) -> torch.Tensor:
        ffn = block.ffn
        # The value and gate halves each through their own convolutions (no activation is sliced).
        inverted, depth = ffn.inverted_conv, ffn.depth_conv
        halves = conv1x1_parts(h, inverted.weight, inverted.bias, 2)  # 1x1 Conv2d on (B, C, 1, S)
        weights, biases = weight_slices(depth.weight, 2), weight_slices(depth.bias, 2)
        value, gate = (
            self._depthwise(F.silu(y), w, b) for y, w, b in zip(halves, weights, biases, strict=True)
        )
        return ffn.point_conv(value * F.silu(gate))

    def _depthwise(self, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """The per-frame 3x3 depthwise conv of (B, F, 1, S) as a 2D depthwise conv over (B, F * T, H, W), a
        view: channel c of frame t is plane c * T + t, so each weight repeats T times. 2D, not Conv3d, which
        mobile runtimes (ExecuTorch's kernels, some NPUs) lack."""
        grid = self.grid
        return F.conv2d(
            y.view(y.shape[0], y.shape[1] * grid.frames, grid.height, grid.width),
            weight.repeat_interleave(grid.frames, dim=0),
            bias.repeat_interleave(grid.frames),
            padding=1,
            groups=y.shape[1] * grid.frames,
        ).view_as(y)


@torch.no_grad()
def mobile_parity(config: DenoiserConfig, grid: LatentGrid, seed: int = 0) -> dict[str, float]:
    """Max abs difference between a random denoiser and its `MobileDenoiser` on the same weights and inputs
    (fp32), with the output's scale. The output layer starts at zero, so it is given random weights first:
    parity of an all-zero output would say nothing."""
    torch.manual_seed(seed)
    model = MobileI2VDenoiser(config)
    nn.init.normal_(model.final_layer.linear.weight, std=0.5)
    model.eval()
    latents = torch.randn(1, config.latent_channels, grid.frames, grid.height, grid.width)
    timesteps = torch.tensor([[0.0] + [0.7] * (grid.frames - 1)])
    motion = torch.tensor([2.0])
    expected = model(latents, timesteps, motion)
    mobile = MobileDenoiser(model, grid)(latents, timesteps, motion)
    return {
        "max_abs_err": float((mobile - expected).abs().max()),
        "output_max_abs": float(expected.abs().max()),
        "tokens": grid.tokens,
    }
