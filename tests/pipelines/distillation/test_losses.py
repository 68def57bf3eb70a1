"""The distillation loss terms on tiny tensors, including a distribution-matching gradient whose direction
is known in closed form."""

from __future__ import annotations

import pytest
import torch

from mobilei2v_pipeline.models.flow import noisy_latents, predicted_x0
from mobilei2v_pipeline.pipelines.distillation import losses

SHAPE = (2, 3, 3, 2, 2)  # (B, C, T, H, W); frame 0 is the pinned image


def test_trajectory_regression_compares_mean_velocities_on_generated_frames():
    target = torch.randn(SHAPE)
    landed = target.clone()
    landed[:, :, 0] += 5.0  # frame 0 is pinned: never part of a loss
    assert losses.trajectory_regression_loss(landed, target, dt=-0.25) == 0
    landed[:, :, 1:] += 0.5
    assert losses.trajectory_regression_loss(landed, target, dt=-0.25) == pytest.approx((0.5 / 0.25) ** 2)
    assert losses.regression_anchor_loss(landed, target) == pytest.approx(0.25)


def _gaussian_velocity(mean: torch.Tensor, std: float):
    """The exact flow velocity of data ~ N(mean, std^2 I) under x_t = (1 - t) x_0 + t eps."""

    def velocity(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.view(-1, 1, 1, 1, 1)
        gain = (1 - t) * std**2 / ((1 - t) ** 2 * std**2 + t**2)
        x0 = mean + gain * (x_t - (1 - t) * mean)  # E[x_0 | x_t]
        return (x_t - x0) / t

    return velocity


def test_distribution_matching_moves_samples_from_the_fake_towards_the_real_distribution():
    # Real data ~ N(+1, 0.5^2), the student's current samples ~ N(-1, 0.5^2) (what its fake score knows).
    # Both scores in closed form: fake_x0 - real_x0 = (mu_fake - mu_real) t^2 / ((1-t)^2 s^2 + t^2), so
    # the loss's gradient must point along mu_fake - mu_real on every element, and descent must go to mu_real.
    real, fake = _gaussian_velocity(torch.tensor(1.0), 0.5), _gaussian_velocity(torch.tensor(-1.0), 0.5)
    generator = torch.Generator().manual_seed(0)
    sample = (-1 + 0.5 * torch.randn(SHAPE, generator=generator)).requires_grad_(True)
    t = torch.tensor([0.3, 0.8])
    x_t = noisy_latents(sample.detach(), torch.randn(SHAPE, generator=generator), t)
    loss = losses.distribution_matching_loss(
        sample, predicted_x0(x_t, t, real(x_t, t)), predicted_x0(x_t, t, fake(x_t, t))
    )
    loss.backward()
    assert (sample.grad[:, :, 1:] < 0).all()  # d loss / d sample ∝ mu_fake - mu_real = -2
    assert (sample.grad[:, :, 0] == 0).all()  # the pinned frame gets none

    with torch.no_grad():
        moved = sample - 100 * sample.grad
    assert moved[:, :, 1:].mean() > sample[:, :, 1:].mean() + 0.1


def test_distribution_matching_is_zero_when_fake_and_real_agree():
    sample = torch.randn(SHAPE, requires_grad=True)
    x0 = torch.randn(SHAPE)
    losses.distribution_matching_loss(sample, x0, x0).backward()
    assert sample.grad.abs().max() == 0


def test_hinge_losses():
    assert losses.hinge_discriminator_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -2.0])) == 0
    assert losses.hinge_discriminator_loss(torch.zeros(4), torch.zeros(4)) == 2
    assert losses.hinge_discriminator_loss(torch.tensor([0.5]), torch.tensor([0.5])) == 2
    logits = torch.tensor([0.5, -1.5], requires_grad=True)
    loss = losses.hinge_generator_loss(logits)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert (logits.grad < 0).all()  # descent raises the discriminator's logits on generated samples
