"""A light encoder and decoder for the VAE's latent space (TAESD-style), distilled from the VAE.

With one or two denoiser steps, the VAE's decoder and the first-frame encoder cost more than the denoiser
(tiny preset: about 100 and 15 ms against 8 ms per denoiser call; the paper sizes: 7.34 and 0.71 TMAC
against 0.72 TMAC), so they bound what fewer steps can gain end to end. These 2D networks work per latent
frame: the decoder turns each latent frame into its `temporal` video frames (frame 0 into one, as the
causal VAE does) with a pixel shuffle for the last 4x; the encoder maps the first frame to latent frame 0.
With `linear_path`, each also has the VAE's linear path (a strided conv per latent cell, copied from the
VAE's by `copy_linear_path`) beside its convs, whose last layer then starts at zero: the light pair starts
as the VAE's PCA code and learns what the VAE's deep networks add.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SHUFFLE = 4  # the last spatial 4x of the decoder, and the first of the encoder, are pixel (un)shuffles


@dataclass(frozen=True)
class LightAutoencoderConfig:
    latent_channels: int
    spatial: int  # the VAE's spatial compression (a power of 2, at least SHUFFLE)
    temporal: int  # the VAE's temporal compression
    widths: tuple[int, ...] = (64, 48, 32)  # decoder conv widths from the latent resolution upwards
    linear_path: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(self.widths))
        stages = self.spatial // SHUFFLE
        if self.spatial % SHUFFLE or stages & (stages - 1) or len(self.widths) != stages.bit_length():
            raise ValueError(
                f"LightAutoencoderConfig: spatial {self.spatial} must be {SHUFFLE} x a power of 2 and widths "
                f"{self.widths} must have one entry per 2x stage plus one ({stages.bit_length()})"
            )


def _conv(a: int, b: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(a, b, 3, stride=stride, padding=1)


class LightDecoder(nn.Module):
    def __init__(self, config: LightAutoencoderConfig):
        super().__init__()
        self.config = config
        widths = config.widths
        layers: list[nn.Module] = [_conv(config.latent_channels, widths[0]), nn.SiLU()]
        for a, b in pairwise(widths):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(a, b), nn.SiLU()]
        layers += [nn.Conv2d(widths[-1], 3 * config.temporal * SHUFFLE**2, 1), nn.PixelShuffle(SHUFFLE)]
        self.net = nn.Sequential(*layers)
        s = config.spatial
        self.linear = _linear_path(
            nn.ConvTranspose2d(config.latent_channels, 3 * config.temporal, s, s), config
        )
        if self.linear is not None:
            _zero(layers[-2])

    def forward(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Latents (B, C, t, h, w) -> video (B, 3, 1 + (t - 1) * temporal, height, width) in [-1, 1]."""
        batch, channels, frames, h, w = latents.shape
        planes = latents.transpose(1, 2).reshape(batch * frames, channels, h, w)
        out = self.net(planes)  # (B t, 3 * temporal, H, W): the temporal frames stacked in channels
        if self.linear is not None:
            out = out + self.linear(planes)
        temporal = self.config.temporal
        out = out.view(batch, frames, temporal, 3, *out.shape[-2:]).flatten(
            1, 2
        )  # (B, t * temporal, 3, H, W)
        out = out[:, temporal - 1 :, :, :height, :width]  # latent frame 0 stands for one frame
        return out.transpose(1, 2).clamp(-1.0, 1.0)


class LightEncoder(nn.Module):
    def __init__(self, config: LightAutoencoderConfig):
        super().__init__()
        self.config = config
        widths = config.widths[::-1]
        layers: list[nn.Module] = [nn.PixelUnshuffle(SHUFFLE), _conv(3 * SHUFFLE**2, widths[0]), nn.SiLU()]
        for a, b in pairwise(widths):
            layers += [_conv(a, b, stride=2), nn.SiLU()]
        layers += [nn.Conv2d(widths[-1], config.latent_channels, 1)]
        self.net = nn.Sequential(*layers)
        s = config.spatial
        self.linear = _linear_path(nn.Conv2d(3, config.latent_channels, s, s), config)
        if self.linear is not None:
            _zero(layers[-1])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Image (B, 3, H, W) in [-1, 1] -> latent frame 0 (B, C, 1, ceil(H / s), ceil(W / s))."""
        spatial = self.config.spatial
        pad_h, pad_w = -image.shape[-2] % spatial, -image.shape[-1] % spatial
        image = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
        latent = self.net(image)
        if self.linear is not None:
            latent = latent + self.linear(image)
        return latent.unsqueeze(2)


def _linear_path(conv: nn.Module, config: LightAutoencoderConfig) -> nn.Module | None:
    return conv if config.linear_path else None


def _zero(layer: nn.Module) -> None:
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()


class LightAutoencoder(nn.Module):
    def __init__(self, config: LightAutoencoderConfig):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = LightEncoder(config), LightDecoder(config)

    @torch.no_grad()
    def copy_linear_path(self, patch_encoder: nn.Conv3d, patch_decoder: nn.ConvTranspose3d) -> None:
        """Start the light pair's linear paths as the VAE's (`VideoAutoencoder.patch_encoder/decoder`).

        The VAE's decoder maps a latent cell to `temporal` frames (C, 3, t, s, s); the light decoder stacks
        them frame-major in channels (C, t * 3, s, s). The VAE's encoder sees the first frame `temporal`
        times (causal padding), so the light encoder's weights are the VAE's summed over time."""
        c, t = self.config.latent_channels, self.config.temporal
        decoder = patch_decoder.weight.permute(0, 2, 1, 3, 4).reshape(
            c, t * 3, *patch_decoder.weight.shape[-2:]
        )
        self.decoder.linear.weight.copy_(decoder)
        self.decoder.linear.bias.copy_(patch_decoder.bias.repeat(t))
        self.encoder.linear.weight.copy_(patch_encoder.weight.sum(dim=2))
        self.encoder.linear.bias.copy_(patch_encoder.bias)


def light_autoencoder_file(model: LightAutoencoder) -> dict[str, Any]:
    return {"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}


def load_light_autoencoder(model_file: dict[str, Any]) -> LightAutoencoder:
    model = LightAutoencoder(LightAutoencoderConfig(**model_file["config"]))
    model.load_state_dict(model_file["state_dict"])
    return model.eval()
