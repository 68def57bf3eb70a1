"""The teacher as a task of the shared training loop: rectified flow on cached, normalised latents."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import DenoiserConfig
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.flow import flow_matching_loss, logit_normal_timesteps
from mobilei2v_pipeline.models.i2v import sample_video
from mobilei2v_pipeline.training.loop import fingerprint

VALIDATION_TIMESTEPS = (0.1, 0.3, 0.5, 0.7, 0.9)  # fixed, so val_loss is comparable across steps and runs


@dataclass
class LatentClips:
    """Normalised latents (N, C, T, h, w), their motion scores (N,), and the pixel size of the clips."""

    latents: torch.Tensor
    motion: torch.Tensor
    height: int
    width: int

    def head(self, count: int) -> LatentClips:
        return LatentClips(self.latents[:count], self.motion[:count], self.height, self.width)


class TeacherTask:
    name = "teacher"

    def __init__(
        self,
        config: DenoiserConfig,
        train: LatentClips,
        val: LatentClips,
        timesteps: dict[str, float],
        sampling: dict[str, float],
        vae: torch.nn.Module,
        stats: dict[str, list[float]],
        gradient_checkpointing: bool = False,
        sample_examples: int = 2,
    ):
        self.config, self.train_clips, self.val_clips = config, train, val
        self.timesteps, self.sampling, self.vae, self.stats = timesteps, sampling, vae, stats
        self.gradient_checkpointing, self.sample_examples = gradient_checkpointing, sample_examples
        self.fingerprint = fingerprint(dataclasses.asdict(config), timesteps, train.latents, train.motion)

    def build_model(self) -> torch.nn.Module:
        model = MobileI2VDenoiser(self.config)
        model.gradient_checkpointing = self.gradient_checkpointing
        return model

    def num_examples(self) -> int:
        return len(self.train_clips.latents)

    def batch(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices)
        return {
            "latents": self.train_clips.latents[index].to(device),
            "motion": self.train_clips.motion[index].to(device),
        }

    def loss(self, model, batch, generator):
        x0 = batch["latents"]
        t = logit_normal_timesteps(len(x0), generator, self.timesteps["mean"], self.timesteps["std"]).to(x0)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        loss = flow_matching_loss(model, x0, noise, t, batch["motion"])
        return loss, {"loss": loss.item()}

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        return {"val_loss": validation_loss(model, self.val_clips)}

    def sample(self, model) -> np.ndarray:
        return render_samples(
            model, self.vae, self.stats, self.val_clips, self.sampling, examples=self.sample_examples
        )


@torch.no_grad()
def validation_loss(model, clips: LatentClips, seed: int = 0) -> float:
    """Flow-matching loss on the val latents at fixed timesteps with fixed noise: deterministic."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for t in VALIDATION_TIMESTEPS:
        noise = torch.randn(clips.latents.shape, generator=generator)
        times = torch.full((len(clips.latents),), t)
        losses.append(flow_matching_loss(model, clips.latents, noise, times, clips.motion).item())
    model.train(was_training)
    return float(np.mean(losses))


@torch.no_grad()
def render_samples(
    model, vae, stats: dict[str, list[float]], clips: LatentClips, sampling: dict[str, float], examples: int
) -> np.ndarray:
    """Rows of (input image | generated video | ground truth through the VAE) for the first examples."""
    was_training = model.training
    model.eval()
    latents = clips.latents[:examples]
    first = ae.denormalize(latents[:, :, :1], stats)
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
    model.train(was_training)
    generated, truth = ae.to_uint8(generated), ae.to_uint8(truth)
    image = np.repeat(truth[:, :1], truth.shape[1], axis=1)  # the conditioning frame, held
    rows = np.concatenate([image, generated, truth], axis=3)  # (B, T, H, 3W, 3)
    return np.concatenate(list(rows), axis=1)  # examples stacked vertically
