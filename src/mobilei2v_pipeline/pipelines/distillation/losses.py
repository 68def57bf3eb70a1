"""The loss terms of the two distillation stages, as plain functions of tensors.

Latents are (B, C, T, H, W); frame 0 is the pinned image latent, so every term looks at frames 1.. only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generated(x: torch.Tensor) -> torch.Tensor:
    """The frames a model generates (all but the pinned first)."""
    return x[:, :, 1:].float()


def trajectory_regression_loss(landed: torch.Tensor, target: torch.Tensor, dt: float) -> torch.Tensor:
    """Stage 1: where one student step from a teacher state lands against where the teacher's ODE lands,
    measured as the mean velocity over the segment, (landed - target) / dt, so segments of different
    lengths weigh alike."""
    return F.mse_loss(generated(landed) / dt, generated(target) / dt)


def regression_anchor_loss(sample: torch.Tensor, teacher_sample: torch.Tensor) -> torch.Tensor:
    """Stage 2's anchor: the 1-step sample against the teacher's N-step sample from the same noise."""
    return F.mse_loss(generated(sample), generated(teacher_sample))


def distribution_matching_loss(
    sample: torch.Tensor, real_x0: torch.Tensor, fake_x0: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """DMD2's generator loss. At the re-noised sample, the teacher ("real") and the fake score network each
    predict clean latents; the difference of their scores is proportional to fake_x0 - real_x0, so the
    sample should move against it. The loss's gradient with respect to `sample` is exactly that difference,
    normalised per sample by the mean distance to the teacher's prediction (DMD's weighting), divided by the
    number of elements. real_x0 and fake_x0 carry no gradient."""
    sample, real_x0, fake_x0 = generated(sample), generated(real_x0).detach(), generated(fake_x0).detach()
    dims = tuple(range(1, sample.ndim))
    weight = (sample.detach() - real_x0).abs().mean(dim=dims, keepdim=True).clamp_min(eps)
    gradient = (fake_x0 - real_x0) / weight
    return 0.5 * F.mse_loss(sample, (sample - gradient).detach())


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator: real logits above +1 and fake below -1 cost nothing."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the hinge game: raise the discriminator's logits on its samples."""
    return -fake_logits.mean()
