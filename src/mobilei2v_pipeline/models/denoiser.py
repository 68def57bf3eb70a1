"""The MobileI2V denoiser: a Sana-style linear DiT over video latents (docs/design.md, section 3).

Latents (B, C, T, H, W) become one token per latent cell (patch size 1), time-major. Blocks listed in
`config.softmax_blocks` use softmax attention, the others ReLU linear attention; every block has a Mix-FFN.
Conditioning is adaLN-single: a timestep per latent frame and a motion score per sample are each embedded
and projected to six modulation vectors (shift, scale, gate for attention and for the FFN), which every block
adds to its own learned table. The timestep is per frame, so the modulation is per token: in I2V frame 0 is
the clean image latent and carries t = 0. The output is the rectified-flow velocity (see flow.py).

With `config.first_frame_residual` (off in the public code, on in the `tiny` preset), the generated frames
enter as their difference from the image latent along the flow path and the output is mapped back
(`first_frame_residual`, `absolute_velocity`): an exact change of variables, so the model's inputs and
outputs keep their meaning, and the network learns what changes from the image rather than the image.

The function is the public MobileI2V code's (`Mobiledit`, hustvl/MobileI2V), checked against a fixture made
from it (tests/reference/); its checkpoints load through `checkpoint_import.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mobilei2v_pipeline.models.attention import LinearAttention, SoftmaxAttention
from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid
from mobilei2v_pipeline.models.rope import rope_tables


def sinusoidal_embedding(values: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(...) -> (..., dim): cos and sin of the values at dim / 2 frequencies from 1 to 1 / max_period."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=values.device) / half
    )
    angles = values.float().unsqueeze(-1) * frequencies
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class ConditionEmbedder(nn.Module):
    """A scalar condition -> sinusoid -> MLP embedding (hidden), and its adaLN-single projection to the six
    modulation vectors (the public code's t_embedder and t_block, flow_embedder and flow_block).

    The value goes into the sinusoid as it is, as in the public code: the flow time t in [0, 1] (its
    timestep / 1000) and the raw motion score (about 0-10).
    """

    def __init__(self, hidden_size: int, frequency_embedding_size: int) -> None:
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """values (...) -> embedding (..., hidden) and modulation (..., 6, hidden)."""
        frequencies = sinusoidal_embedding(values, self.frequency_embedding_size)
        embedding = self.mlp(frequencies.to(self.mlp[0].weight.dtype))
        return embedding, self.modulation(embedding).unflatten(-1, (6, -1))


class MixFFN(nn.Module):
    """Sana's GLUMBConv: 1x1 conv -> SiLU -> 3x3 depthwise conv -> value * SiLU(gate) -> 1x1 conv.

    The depthwise conv runs on each latent frame's (H, W) grid (frames folded into the batch): the FFN is
    spatial only and time is mixed by attention alone.
    """

    def __init__(self, hidden_size: int, ffn_hidden: int) -> None:
        super().__init__()
        self.inverted_conv = nn.Conv2d(hidden_size, 2 * ffn_hidden, 1)
        self.depth_conv = nn.Conv2d(2 * ffn_hidden, 2 * ffn_hidden, 3, padding=1, groups=2 * ffn_hidden)
        self.point_conv = nn.Conv2d(ffn_hidden, hidden_size, 1, bias=False)

    def forward(self, x: torch.Tensor, grid: LatentGrid) -> torch.Tensor:
        """x (B, T, H * W, C) -> same shape."""
        batch, frames, cells, channels = x.shape
        h = x.reshape(batch * frames, grid.height, grid.width, channels).permute(0, 3, 1, 2)
        value, gate = self.depth_conv(F.silu(self.inverted_conv(h))).chunk(2, dim=1)
        h = self.point_conv(value * F.silu(gate))
        return h.permute(0, 2, 3, 1).reshape(batch, frames, cells, channels)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class DenoiserBlock(nn.Module):
    """LayerNorm -> modulate -> attention -> gated residual; LayerNorm -> modulate -> Mix-FFN -> gated
    residual. Tokens are held as (B, T, H * W, C) so the per-frame modulation (B, T, 1, C) broadcasts."""

    def __init__(self, config: DenoiserConfig, softmax: bool) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        attention = SoftmaxAttention if softmax else LinearAttention
        self.attn = attention(hidden, config.num_heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.ffn = MixFFN(hidden, config.ffn_hidden)
        self.scale_shift_table = nn.Parameter(torch.randn(6, hidden) / hidden**0.5)

    def forward(
        self,
        x: torch.Tensor,
        modulation: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        grid: LatentGrid,
    ) -> torch.Tensor:
        """x (B, T, H * W, C), modulation (B, T, 6, C) -> same shape as x."""
        shift_a, scale_a, gate_a, shift_f, scale_f, gate_f = (
            (modulation + self.scale_shift_table).unsqueeze(3).unbind(2)  # six (B, T, 1, C)
        )
        h = modulate(self.norm1(x), shift_a, scale_a)
        x = x + gate_a * self.attn(h.flatten(1, 2), cos, sin).view_as(x)
        h = modulate(self.norm2(x), shift_f, scale_f)
        return x + gate_f * self.ffn(h, grid)


class FinalLayer(nn.Module):
    """LayerNorm modulated by the per-frame timestep embedding plus a learned (2, C) table; C -> latent."""

    def __init__(self, hidden_size: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size**0.5)
        self.linear = nn.Linear(hidden_size, out_channels)

    def forward(self, x: torch.Tensor, timestep_embedding: torch.Tensor) -> torch.Tensor:
        """x (B, T, H * W, C), timestep_embedding (B, T, C) -> (B, T, H * W, out_channels)."""
        shift, scale = (timestep_embedding.unsqueeze(2) + self.scale_shift_table).unsqueeze(3).unbind(2)
        return self.linear(modulate(self.norm(x), shift, scale))


def first_frame_residual(latents: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """Latents (B, C, T, H, W) with every frame after the first replaced by x_t - (1 - t) x_image, the noisy
    path of its difference from the image latent (frame 0): x_t = (1 - t) x_0 + t eps gives
    (1 - t) (x_0 - x_image) + t eps. Per-frame timesteps (B, T)."""
    image = latents[:, :, :1]
    keep = (1 - timesteps[:, 1:]).to(latents.dtype).view(latents.shape[0], 1, -1, 1, 1)
    return torch.cat([image, latents[:, :, 1:] - keep * image], dim=2)


def absolute_velocity(residual_velocity: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """The velocity of the latents from that of their difference from the image latent: eps - x_0 is
    (eps - (x_0 - x_image)) - x_image on every frame after the first."""
    image = latents[:, :, :1]
    return torch.cat([residual_velocity[:, :, :1], residual_velocity[:, :, 1:] - image], dim=2)


class MobileI2VDenoiser(nn.Module):
    """Predicts the flow velocity of video latents given per-frame timesteps and a motion score.

    Works on any latent grid: nothing depends on the token count. `gradient_checkpointing=True` recomputes
    each block in the backward pass instead of storing its activations (for the paper size).
    """

    def __init__(self, config: DenoiserConfig, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = gradient_checkpointing
        hidden = config.hidden_size
        self.patch_embed = nn.Linear(config.latent_channels, hidden)  # patch size 1: a per-cell projection
        self.timestep_embedder = ConditionEmbedder(hidden, config.frequency_embedding_size)
        self.motion_embedder = ConditionEmbedder(hidden, config.frequency_embedding_size)
        self.blocks = nn.ModuleList(
            DenoiserBlock(config, softmax=i in config.softmax_blocks) for i in range(config.depth)
        )
        self.final_layer = FinalLayer(hidden, config.latent_channels)
        if config.caption_embedder:
            # The public code's text path (y_embedder's projection and attention_y_norm), which no block
            # reads. Built only for the parameter count; never used here.
            self.caption_embedder = nn.Sequential(
                nn.Linear(config.caption_channels, hidden),
                nn.GELU(approximate="tanh"),
                nn.Linear(hidden, hidden),
            )
            self.caption_norm = nn.RMSNorm(hidden, eps=1e-5)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT / PixArt / Sana conventions: xavier linears, N(0, 0.02) condition MLPs, zero output layer."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for embedder in (self.timestep_embedder, self.motion_embedder):
            for layer in (embedder.mlp[0], embedder.mlp[2], embedder.modulation[1]):
                nn.init.normal_(layer.weight, std=0.02)
        # The untrained model predicts v = 0; blocks still learn from the first step through the output layer.
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """latents (B, C, T, H, W); timesteps (B, T), flow time in [0, 1] per latent frame (t = 0 is clean,
        so frame 0 carries 0 in I2V), or (B,) for one t on every frame; motion (B,) motion scores.
        Returns the predicted velocity (B, C, T, H, W)."""
        x, context = self._embed(latents, timesteps, motion)
        for block in self.blocks:
            x = self._run_block(block, x, context)
        batch, _, frames, height, width = latents.shape
        x = self.final_layer(x, context["timestep_embedding"])
        velocity = x.reshape(batch, frames, height, width, -1).permute(0, 4, 1, 2, 3)
        return absolute_velocity(velocity, latents) if self.config.first_frame_residual else velocity

    def block_features(
        self, latents: torch.Tensor, timesteps: torch.Tensor, motion: torch.Tensor, blocks: Sequence[int]
    ) -> list[torch.Tensor]:
        """The token features (B, T, H * W, hidden) after each of `blocks` (0-based), running only as many
        blocks as the deepest one needs (a discriminator's view of the video, as in LADD / DMD2)."""
        x, context = self._embed(latents, timesteps, motion)
        features = []
        for index, block in enumerate(self.blocks[: max(blocks) + 1]):
            x = self._run_block(block, x, context)
            if index in blocks:
                features.append(x)
        return features

    def _embed(
        self, latents: torch.Tensor, timesteps: torch.Tensor, motion: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Check the inputs; tokens (B, T, H * W, hidden) and what every block needs."""
        if latents.ndim != 5 or latents.shape[1] != self.config.latent_channels:
            raise ValueError(
                f"latents must be (B, {self.config.latent_channels}, T, H, W), got {tuple(latents.shape)}"
            )
        batch, _, frames, height, width = latents.shape
        if timesteps.ndim == 1:
            timesteps = timesteps.unsqueeze(1).expand(batch, frames)
        if timesteps.shape != (batch, frames):
            raise ValueError(
                f"timesteps must be (B, T) = ({batch}, {frames}) or (B,), got {tuple(timesteps.shape)}"
            )
        if motion.shape != (batch,):
            raise ValueError(f"motion must be one score per sample, ({batch},), got {tuple(motion.shape)}")

        grid = LatentGrid(frames, height, width)
        timestep_embedding, timestep_modulation = self.timestep_embedder(timesteps)  # (B,T,C), (B,T,6,C)
        _, motion_modulation = self.motion_embedder(motion)  # (B, 6, C): one per sample
        config = self.config
        cos, sin = rope_tables(
            grid, config.head_dim, config.rope_theta, config.rope_position_scale(grid), device=latents.device
        )
        context = {
            "modulation": timestep_modulation + motion_modulation.unsqueeze(1),
            "timestep_embedding": timestep_embedding,
            "cos": cos,
            "sin": sin,
            "grid": grid,
        }
        if config.first_frame_residual:
            latents = first_frame_residual(latents, timesteps)
        tokens = latents.permute(0, 2, 3, 4, 1).reshape(batch, frames, height * width, -1)
        return self.patch_embed(tokens.to(self.patch_embed.weight.dtype)), context  # (B, T, H * W, C)

    def _run_block(self, block: DenoiserBlock, x: torch.Tensor, context: dict[str, Any]) -> torch.Tensor:
        args = (x, context["modulation"], context["cos"], context["sin"], context["grid"])
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)
