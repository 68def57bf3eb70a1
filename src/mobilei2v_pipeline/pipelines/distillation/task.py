"""The two distillation stages as tasks of the shared training loop, and the teacher trajectories that
stage 1 learns from.

Stage 1 (few-step regression): a copy of the teacher learns to land, in `student_steps` Euler steps, where
the teacher's N-step ODE lands, segment by segment from the teacher's own states.
Stage 2 (one step, DMD2-style): the 1-step student follows the difference of a fake score network (trained
online on the student's samples) and the frozen teacher at re-noised samples, plus a hinge adversarial loss
from discriminator heads on the frozen teacher's features, plus the regression anchor. Student, fake score
and discriminator have their own optimisers and update intervals (phases of the loop).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.flow import (
    euler_integrate,
    flow_matching_loss,
    frame_timesteps,
    logit_normal_timesteps,
    noisy_latents,
    predicted_x0,
    sampling_schedule,
)
from mobilei2v_pipeline.models.i2v import LatentClips, eval_mode, load_denoiser, render_samples
from mobilei2v_pipeline.pipelines.distillation import losses
from mobilei2v_pipeline.training.loop import Phase, TrainingTask, fingerprint


@dataclass
class Trajectories:
    """Teacher ODE solutions: `states` (M, K + 1, C, T, h, w) at the student's K + 1 `times` (states[:, 0]
    is the pinned noise, states[:, -1] the teacher's N-step sample), with each one's motion score and clip."""

    states: torch.Tensor
    times: torch.Tensor
    motion: torch.Tensor
    clip_index: torch.Tensor

    def to_dict(self) -> dict[str, torch.Tensor]:
        return dict(vars(self))

    @property
    def first_frame(self) -> torch.Tensor:
        return self.states[:, 0, :, :1]


@dataclass
class TeacherTrajectories:
    """The trajectories stage's hand-off to both distillation stages: the teacher's trajectories from the
    train clips (stage 1's examples, stage 2's anchor) and from a few val clips (both stages' validation),
    and the sampler that made them."""

    train: Trajectories
    val: Trajectories
    teacher_steps: int
    shift: float

    def to_dict(self) -> dict[str, Any]:
        """Tensors and plain values only, so the file loads with torch.load(weights_only=True)."""
        return {
            "train": self.train.to_dict(),
            "val": self.val.to_dict(),
            "teacher_steps": self.teacher_steps,
            "shift": self.shift,
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> TeacherTrajectories:
        train, val = Trajectories(**saved["train"]), Trajectories(**saved["val"])
        return cls(train, val, int(saved["teacher_steps"]), float(saved["shift"]))


def student_times_in_teacher_schedule(
    teacher_steps: int, student_steps: int, shift: float
) -> tuple[torch.Tensor, list[int]]:
    """The student's sampling times and their positions in the teacher's schedule. Both use the same shift,
    so the student's times are teacher times exactly when student_steps divides teacher_steps."""
    if teacher_steps % student_steps:
        raise ValueError(
            f"distillation: the teacher's {teacher_steps} steps must be a multiple of the student's "
            f"{student_steps}, so the teacher's trajectory passes through every time the student visits"
        )
    stride = teacher_steps // student_steps
    return sampling_schedule(student_steps, shift), list(range(0, teacher_steps + 1, stride))


@torch.no_grad()
def teacher_trajectories(
    teacher: MobileI2VDenoiser,
    clips: LatentClips,
    seeds_per_clip: int,
    teacher_steps: int,
    student_steps: int,
    shift: float,
    seed: int,
    motion_range: tuple[float, float] | None = None,
    batch_size: int = 16,
) -> Trajectories:
    """Run the teacher's N-step sampler from `seeds_per_clip` noises per clip (its first frame) and keep
    the states at the student's times. The motion score asked of each is the clip's own, or drawn
    log-uniformly from `motion_range`: the teacher answers any motion, and a student that only ever saw
    each image with one motion would not learn the teacher's response to the others."""
    times, keep = student_times_in_teacher_schedule(teacher_steps, student_steps, shift)
    clip_index = torch.arange(len(clips.latents)).repeat_interleave(seeds_per_clip)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((len(clip_index), *clips.latents.shape[1:]), generator=generator)
    motion = clips.motion[clip_index]
    if motion_range is not None:
        low, high = np.log(motion_range[0]), np.log(motion_range[1])
        motion = torch.exp(low + (high - low) * torch.rand(len(clip_index), generator=generator))
    schedule = sampling_schedule(teacher_steps, shift)
    states = []
    for start in tqdm(range(0, len(clip_index), batch_size), desc="teacher trajectories"):
        index = clip_index[start : start + batch_size]
        path = euler_integrate(
            teacher,
            noise[start : start + batch_size],
            clips.latents[index, :, :1],
            motion[start : start + batch_size],
            schedule,
        )
        states.append(torch.stack([path[i] for i in keep], dim=1))
    return Trajectories(torch.cat(states), times, motion, clip_index)


def few_step_sample(
    student: nn.Module, noise: torch.Tensor, first_frame: torch.Tensor, motion: torch.Tensor, times
) -> torch.Tensor:
    """The student's sample along `times` (gradients flow when enabled)."""
    return euler_integrate(student, noise, first_frame, motion, times)[-1]


@torch.no_grad()
def agreement_loss(student: nn.Module, trajectories: Trajectories, steps: int, shift: float) -> float:
    """MSE of the generated frames between the student's `steps`-step samples and the teacher's N-step
    samples from the same noise: the validation figure of both stages (lower is closer to the teacher)."""
    with eval_mode(student):
        sample = few_step_sample(
            student,
            trajectories.states[:, 0],
            trajectories.first_frame,
            trajectories.motion,
            sampling_schedule(steps, shift),
        )
    return float(losses.regression_anchor_loss(sample, trajectories.states[:, -1]))


class _StudentTask(TrainingTask):
    """What both stages share: trajectories as training examples, validation against the teacher on the
    val trajectories, and sample videos from the val clips."""

    name: str
    sample_steps: int

    def __init__(
        self,
        teacher_file: dict[str, Any],
        train: Trajectories,
        val: Trajectories,
        val_clips: LatentClips,
        shift: float,
        vae: nn.Module,
        stats: dict[str, list[float]],
        settings: dict[str, Any],
        gradient_checkpointing: bool = False,
    ):
        self.teacher_file, self.train_trajectories, self.val_trajectories = teacher_file, train, val
        self.val_clips, self.shift, self.vae, self.stats = val_clips, shift, vae, stats
        self.settings, self.gradient_checkpointing = settings, gradient_checkpointing
        self.fingerprint = fingerprint(
            type(self).__name__, settings, train.states, *teacher_file["state_dict"].values()
        )

    def num_examples(self) -> int:
        return len(self.train_trajectories.states)

    def batch(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices)
        return {
            "states": self.train_trajectories.states[index].to(device),
            "motion": self.train_trajectories.motion[index].to(device),
            "clip_index": self.train_trajectories.clip_index[index],
        }

    def _student(self, model: nn.Module) -> nn.Module:
        return model

    def validate(self, model: nn.Module) -> dict[str, float]:
        student = self._student(model)
        return {
            f"val_agreement_mse_{steps}step": agreement_loss(
                student, self.val_trajectories, steps, self.shift
            )
            for steps in sorted({1, 2, self.sample_steps})
        }

    def sample(self, model: nn.Module) -> np.ndarray:
        sampling = {"steps": self.sample_steps, "shift": self.shift}
        student = self._student(model)
        return render_samples(
            student, self.vae, self.stats, self.val_clips, sampling, len(self.val_clips.latents)
        )


def copy_of(model_file: dict[str, Any], gradient_checkpointing: bool = False) -> MobileI2VDenoiser:
    """A trainable denoiser with a saved model's weights (load_state_dict copies them: no aliasing);
    `gradient_checkpointing` recomputes each block's activations in the backward pass, not keeping them."""
    model = load_denoiser(model_file).train()
    model.gradient_checkpointing = gradient_checkpointing
    return model


class TrajectoryRegressionTask(_StudentTask):
    """Stage 1: a copy of the teacher, trained on each segment of the teacher's trajectories."""

    name = "distillation_stage1"

    @property
    def sample_steps(self) -> int:
        return len(self.train_trajectories.times) - 1

    def build_model(self) -> nn.Module:
        return copy_of(self.teacher_file, self.gradient_checkpointing)

    def loss(self, model, batch, generator):
        states, motion = batch["states"], batch["motion"]
        times = self.train_trajectories.times
        first = states[:, 0, :, :1]
        terms = {}
        for k in range(len(times) - 1):
            t, dt = times[k], float(times[k + 1] - times[k])
            x = states[:, k]
            velocity = model(x, frame_timesteps(t.expand(len(x)).to(x), x.shape[2]), motion)
            landed = torch.cat([first, x[:, :, 1:] + dt * velocity[:, :, 1:]], dim=2)
            terms[f"segment_{k}"] = losses.trajectory_regression_loss(landed, states[:, k + 1], dt)
        loss = torch.stack(list(terms.values())).mean()
        return loss, {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}


class DiscriminatorHeads(nn.Module):
    """Small per-token heads on features of the frozen teacher's blocks; one logit per generated token."""

    def __init__(self, hidden_size: int, blocks: list[int], width: int):
        super().__init__()
        self.blocks = list(blocks)
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width), nn.SiLU(), nn.Linear(width, 1)
            )
            for _ in self.blocks
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """features: (B, T, N, hidden) per block -> logits (B, heads * (T - 1) * N), frame 0 left out."""
        return torch.cat([head(f[:, 1:]).flatten(1) for head, f in zip(self.heads, features, strict=True)], 1)


class DistillationNetworks(nn.Module):
    """Stage 2's networks: the student (what the stage produces), the fake score network and the
    discriminator heads (trained), and the teacher (frozen)."""

    def __init__(self, student, teacher, discriminator: DiscriminatorHeads):
        super().__init__()
        self.student = student
        self.fake_score = copy.deepcopy(teacher).train()
        self.teacher = teacher.eval().requires_grad_(False)
        self.discriminator = discriminator

    def logits(self, latents: torch.Tensor, t: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        timesteps = frame_timesteps(t, latents.shape[2])
        return self.discriminator(
            self.teacher.block_features(latents, timesteps, motion, self.discriminator.blocks)
        )


class DistributionMatchingTask(_StudentTask):
    """Stage 2: the 1-step student (from stage 1) against a fake score network and a discriminator."""

    name = "distillation_stage2"
    sample_steps = 1

    def __init__(self, student_file: dict[str, Any], train_clips: LatentClips, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.student_file, self.train_clips = student_file, train_clips
        self.fingerprint = fingerprint(self.fingerprint, *student_file["state_dict"].values())

    def build_model(self) -> nn.Module:
        # The frozen teacher too: the adversarial loss backpropagates through its features to the student.
        teacher = copy_of(self.teacher_file, self.gradient_checkpointing)
        discriminator = DiscriminatorHeads(
            teacher.config.hidden_size,
            self.settings["discriminator"]["blocks"],
            self.settings["discriminator"]["width"],
        )
        student = copy_of(self.student_file, self.gradient_checkpointing)
        return DistillationNetworks(student, teacher, discriminator)

    def _student(self, model: nn.Module) -> nn.Module:
        return model.student

    def phases(self) -> list[Phase]:
        every, rates = self.settings["update_every"], self.settings["learning_rates"]
        return [
            Phase("student", self.student_loss, lambda m: m.student.parameters(), every["student"]),
            Phase(
                "fake_score",
                self.fake_score_loss,
                lambda m: m.fake_score.parameters(),
                every["fake_score"],
                rates["fake_score"],
            ),
            Phase(
                "discriminator",
                self.discriminator_loss,
                lambda m: m.discriminator.parameters(),
                every["discriminator"],
                rates["discriminator"],
            ),
        ]

    def _one_step(self, model: DistillationNetworks, batch) -> torch.Tensor:
        states = batch["states"]
        return few_step_sample(
            model.student, states[:, 0], states[:, 0, :, :1], batch["motion"], sampling_schedule(1, 1.0)
        )

    def _renoise(self, x0: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.settings["renoise_timesteps"]
        t = (low + (high - low) * torch.rand(len(x0), generator=generator)).to(x0)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        return noisy_latents(x0, noise, t), t

    def student_loss(self, model: DistillationNetworks, batch, generator):
        weights = self.settings["loss_weights"]
        motion = batch["motion"]
        sample = self._one_step(model, batch)
        x_t, t = self._renoise(sample.detach(), generator)
        with torch.no_grad():
            timesteps = frame_timesteps(t, x_t.shape[2])
            real_x0 = predicted_x0(x_t, t, model.teacher(x_t, timesteps, motion))
            fake_x0 = predicted_x0(x_t, t, model.fake_score(x_t, timesteps, motion))
        terms = {
            "dmd": losses.distribution_matching_loss(sample, real_x0, fake_x0),
            "adversarial": losses.hinge_generator_loss(
                model.logits(*self._renoise(sample, generator), motion)
            ),
            "regression": losses.regression_anchor_loss(sample, batch["states"][:, -1]),
        }
        loss = sum(weights[name] * term for name, term in terms.items())
        return loss, {"loss": loss.item(), **{f"student_{k}": v.item() for k, v in terms.items()}}

    def fake_score_loss(self, model: DistillationNetworks, batch, generator):
        with torch.no_grad():
            sample = self._one_step(model, batch)
        timesteps = self.settings["fake_score_timesteps"]
        t = logit_normal_timesteps(len(sample), generator, timesteps["mean"], timesteps["std"]).to(sample)
        noise = torch.randn(sample.shape, generator=generator).to(sample)
        loss = flow_matching_loss(model.fake_score, sample, noise, t, batch["motion"])
        return loss, {"fake_score_loss": loss.item()}

    def discriminator_loss(self, model: DistillationNetworks, batch, generator):
        motion = batch["motion"]
        with torch.no_grad():
            fake = self._one_step(model, batch)
            real = self.train_clips.latents[batch["clip_index"]].to(fake)
            fake_t, fake_time = self._renoise(fake, generator)
            real_t, real_time = self._renoise(real, generator)
        real_logits = model.logits(real_t, real_time, motion)
        fake_logits = model.logits(fake_t, fake_time, motion)
        loss = losses.hinge_discriminator_loss(real_logits, fake_logits)
        accuracy = 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean())
        return loss, {"discriminator_loss": loss.item(), "discriminator_accuracy": accuracy.item()}
