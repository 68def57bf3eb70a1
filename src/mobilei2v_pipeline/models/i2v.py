"""Image to video with a trained denoiser and autoencoder: encode the image, sample latents, decode."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import DenoiserConfig
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.flow import Denoiser, euler_sample


@dataclass
class LatentClips:
    """Normalised latents (N, C, T, h, w), their motion scores (N,), and the pixel size of the clips."""

    latents: torch.Tensor
    motion: torch.Tensor
    height: int
    width: int

    def head(self, count: int) -> LatentClips:
        return LatentClips(self.latents[:count], self.motion[:count], self.height, self.width)


def latent_clips(
    latents: np.ndarray, table: pd.DataFrame, stats: dict[str, list[float]], split: str
) -> LatentClips:
    """One split's normalised latents with motion scores and clip size."""
    rows = (table["split"] == split).to_numpy()
    motion = table.loc[rows, "motion_score"].to_numpy()  # read-only (pandas): torch.tensor copies it
    return LatentClips(
        latents=ae.normalize(torch.as_tensor(latents[rows]), stats),
        motion=torch.tensor(motion, dtype=torch.float32),
        height=int(table["height"].iloc[0]),
        width=int(table["width"].iloc[0]),
    )


def example_noise(seed: int, clip_number: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The noise of held-out example (seed, clip): the same for evaluation and for quantization's calibration,
    so both judge the models on the same draws."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed * 100_003 + clip_number))


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The model in eval mode inside the block, back in the mode it was in afterwards, even on an error."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


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


@torch.no_grad()
def render_samples(
    model, vae, stats: dict[str, list[float]], clips: LatentClips, sampling: dict[str, float], examples: int
) -> np.ndarray:
    """Rows of (input image | generated video | ground truth through the VAE) for the first examples."""
    latents = clips.latents[:examples]
    first = ae.denormalize(latents[:, :, :1], stats)
    with eval_mode(model):
        generated = sample_video(
            model,
            vae,
            stats,
            first,
            clips.motion[:examples],
            latents.shape[2],
            int(sampling["steps"]),
            float(sampling["shift"]),
            clips.height,
            clips.width,
            torch.Generator().manual_seed(0),
        )
    truth = ae.decode(vae, ae.denormalize(latents, stats), clips.height, clips.width)
    generated, truth = ae.to_uint8(generated), ae.to_uint8(truth)
    image = np.repeat(truth[:, :1], truth.shape[1], axis=1)  # the conditioning frame, held
    rows = np.concatenate([image, generated, truth], axis=3)  # (B, T, H, 3W, 3)
    return np.concatenate(list(rows), axis=1)  # examples stacked vertically
