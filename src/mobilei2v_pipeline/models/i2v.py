"""Image to video with a trained denoiser and autoencoder: encode the image, sample latents, decode."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import DenoiserConfig
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.flow import Denoiser, euler_sample


def denoiser_file(model: MobileI2VDenoiser) -> dict[str, Any]:
    """What a trained denoiser is saved as: its config and its weights."""
    return {"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}


def load_denoiser(model_file: dict[str, Any]) -> MobileI2VDenoiser:
    """A denoiser from a saved {config, state_dict}, in eval mode."""
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in model_file["config"].items()}
    model = MobileI2VDenoiser(DenoiserConfig(**config))
    model.load_state_dict(model_file["state_dict"])
    return model.eval()


@torch.no_grad()
def sample_video(
    denoiser: Denoiser,
    vae: torch.nn.Module,
    stats: dict[str, list[float]],
    first_frame_latent: torch.Tensor,
    motion: torch.Tensor,
    latent_frames: int,
    steps: int,
    shift: float,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A video (B, 3, T, H, W) in [-1, 1] whose first frame is the image behind `first_frame_latent`
    (B, C, 1, h, w, as the autoencoder gives it), moving about as much as `motion` (B,) asks."""
    first = ae.normalize(first_frame_latent, stats)
    batch, channels, _, h, w = first.shape
    noise = torch.randn((batch, channels, latent_frames, h, w), generator=generator).to(first)
    latents = euler_sample(denoiser, noise, first, motion, steps, shift)
    return ae.decode(vae, ae.denormalize(latents, stats), height, width)


@torch.no_grad()
def image_to_video(
    denoiser: Denoiser,
    vae: torch.nn.Module,
    stats: dict[str, list[float]],
    image: torch.Tensor,
    motion: float,
    video_frames: int,
    steps: int,
    shift: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A video (1, 3, video_frames, H, W) in [-1, 1] from one image (3, H, W) in [-1, 1]."""
    temporal, _ = ae.compression(vae)
    first = ae.encode_first_frame(vae, image[None, :, None])
    return sample_video(
        denoiser,
        vae,
        stats,
        first,
        torch.tensor([motion]),
        1 + (video_frames - 1) // temporal,
        steps,
        shift,
        image.shape[-2],
        image.shape[-1],
        generator,
    )
