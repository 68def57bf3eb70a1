"""Rectified flow for image-to-video: the noising path, the training target, timestep draws and the Euler
sampler. Latents are (B, C, T, H, W); latent frame 0 is the clean image latent (first-frame conditioning).

Convention (docs/design.md): x_t = (1 - t) x_0 + t eps, the network predicts v = eps - x_0, t = 0 is clean
data and t = 1 pure noise, so sampling integrates dx/dt = v from t = 1 down to t = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def noisy_latents(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t for per-sample t (B,), with frame 0 kept clean."""
    t = t.view(-1, 1, 1, 1, 1)
    return pin_first_frame((1 - t) * x0 + t * noise, x0[:, :, :1])


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def frame_timesteps(t: torch.Tensor, frames: int) -> torch.Tensor:
    """Per-frame timesteps (B, T): t on every frame but the first, which is clean (t = 0)."""
    per_frame = t.view(-1, 1).expand(-1, frames).clone()
    per_frame[:, 0] = 0
    return per_frame


def pin_first_frame(latents: torch.Tensor, first_frame: torch.Tensor) -> torch.Tensor:
    """Replace latent frame 0 by the clean image latent (B, C, 1, H, W)."""
    return torch.cat([first_frame.to(latents.dtype), latents[:, :, 1:]], dim=2)


def logit_normal_timesteps(
    batch: int, generator: torch.Generator | None = None, mean: float = 0.0, std: float = 1.0
) -> torch.Tensor:
    """t = sigmoid(n), n ~ N(mean, std): training concentrates on the middle of the path."""
    return torch.sigmoid(mean + std * torch.randn(batch, generator=generator))


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Timestep shift (SD3): spends more steps at high noise, where large latents need them."""
    return shift * t / (1 + (shift - 1) * t)


def sampling_schedule(steps: int, shift: float) -> torch.Tensor:
    """The steps + 1 times from 1 to 0 the Euler sampler visits."""
    return shift_timesteps(torch.linspace(1.0, 0.0, steps + 1), shift)


def euler_integrate(
    denoiser: Denoiser,
    x: torch.Tensor,
    first_frame: torch.Tensor,
    motion: torch.Tensor,
    times: torch.Tensor,
) -> list[torch.Tensor]:
    """Euler steps of the flow ODE from x at times[0] through each of `times`, re-pinning frame 0 after every
    step; returns the state at every time (len(times) states, the first being x pinned). Gradients flow
    when enabled (a student's few steps are trained through this)."""
    x = pin_first_frame(x, first_frame)
    states = [x]
    frames = x.shape[2]
    for t, t_next in pairwise(times.to(x.device)):
        velocity = denoiser(x, frame_timesteps(t.expand(x.shape[0]), frames), motion)
        x = pin_first_frame(x + (t_next - t) * velocity.to(x.dtype), first_frame)
        states.append(x)
    return states


@torch.no_grad()
def euler_sample(
    denoiser: Denoiser,
    noise: torch.Tensor,
    first_frame: torch.Tensor,
    motion: torch.Tensor,
    steps: int,
    shift: float = 3.0,
) -> torch.Tensor:
    """Integrate the flow ODE from noise to data in `steps` Euler steps, re-pinning frame 0 after each."""
    return euler_integrate(denoiser, noise, first_frame, motion, sampling_schedule(steps, shift))[-1]


def predicted_x0(x_t: torch.Tensor, t: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """The clean latents a velocity points to from x_t at per-sample t (B,): x_0 = x_t - t v."""
    return x_t - t.view(-1, 1, 1, 1, 1) * velocity


def flow_matching_loss(
    denoiser: Denoiser, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, motion: torch.Tensor
) -> torch.Tensor:
    """MSE between the predicted and the true velocity on the frames the model generates (not frame 0)."""
    x_t = noisy_latents(x0, noise, t)
    velocity = denoiser(x_t, frame_timesteps(t, x0.shape[2]), motion)
    return torch.nn.functional.mse_loss(
        velocity[:, :, 1:].float(), velocity_target(x0, noise)[:, :, 1:].float()
    )
