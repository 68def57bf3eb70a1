"""The teacher as a task of the shared training loop: rectified flow on cached, normalised latents."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mobilei2v_pipeline.models.config import DenoiserConfig
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.flow import flow_matching_loss, logit_normal_timesteps
from mobilei2v_pipeline.models.i2v import LatentClips, eval_mode, render_samples
from mobilei2v_pipeline.training.loop import TrainingTask, fingerprint

VALIDATION_TIMESTEPS = (0.1, 0.3, 0.5, 0.7, 0.9)  # fixed, so val_loss is comparable across steps and runs


class TeacherTask(TrainingTask):
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
    generator = torch.Generator().manual_seed(seed)
    losses = []
    with eval_mode(model):
        for t in VALIDATION_TIMESTEPS:
            noise = torch.randn(clips.latents.shape, generator=generator)
            times = torch.full((len(clips.latents),), t)
            losses.append(flow_matching_loss(model, clips.latents, noise, times, clips.motion).item())
    return float(np.mean(losses))
