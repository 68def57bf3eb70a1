"""Rectified flow: the noising path, the first-frame pin, the schedule and the Euler sampler."""

from __future__ import annotations

import pytest
import torch

from mobilei2v_pipeline.models.flow import (
    euler_sample,
    flow_matching_loss,
    frame_timesteps,
    logit_normal_timesteps,
    noisy_latents,
    sampling_schedule,
    shift_timesteps,
    velocity_target,
)


def _pair(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn((2, 4, 3, 5, 6), generator=generator)
    return x0, torch.randn(x0.shape, generator=generator)


def test_noisy_latents_follow_the_straight_path_with_a_clean_first_frame():
    x0, noise = _pair()
    t = torch.tensor([0.25, 1.0])
    x_t = noisy_latents(x0, noise, t)
    torch.testing.assert_close(x_t[:, :, :1], x0[:, :, :1])
    torch.testing.assert_close(x_t[0, :, 1:], 0.75 * x0[0, :, 1:] + 0.25 * noise[0, :, 1:])
    torch.testing.assert_close(x_t[1, :, 1:], noise[1, :, 1:])


def test_frame_timesteps_put_zero_on_the_first_frame():
    assert frame_timesteps(torch.tensor([0.5, 0.75]), 3).tolist() == [[0.0, 0.5, 0.5], [0.0, 0.75, 0.75]]


def test_schedule_runs_from_noise_to_data_and_shift_spends_more_time_at_high_noise():
    plain, shifted = sampling_schedule(10, 1.0), sampling_schedule(10, 3.0)
    assert plain[0] == shifted[0] == 1 and plain[-1] == shifted[-1] == 0
    assert (shifted[1:] <= shifted[:-1]).all()
    assert (shifted[1:-1] > plain[1:-1]).all()
    assert shift_timesteps(torch.tensor(0.5), 3.0).item() == pytest.approx(0.75)


def test_logit_normal_timesteps_are_seeded_and_inside_the_unit_interval():
    a = logit_normal_timesteps(1000, torch.Generator().manual_seed(1))
    assert torch.equal(a, logit_normal_timesteps(1000, torch.Generator().manual_seed(1)))
    assert a.min() > 0 and a.max() < 1 and abs(a.median().item() - 0.5) < 0.05


@pytest.mark.parametrize("steps", [1, 2, 7])
def test_euler_with_the_true_velocity_lands_on_the_data_and_keeps_the_first_frame(steps):
    x0, noise = _pair()
    true_velocity = velocity_target(x0, noise)
    seen_first_frames = []

    def oracle(x, timesteps, motion):
        seen_first_frames.append(x[:, :, :1].clone())
        assert (timesteps[:, 0] == 0).all()
        return true_velocity

    out = euler_sample(oracle, noise, x0[:, :, :1], torch.zeros(2), steps, shift=3.0)
    torch.testing.assert_close(out, x0)
    assert len(seen_first_frames) == steps
    assert all(torch.equal(f, x0[:, :, :1]) for f in seen_first_frames)


def test_flow_matching_loss_is_zero_for_the_true_velocity_and_ignores_frame_zero():
    x0, noise = _pair()

    def oracle(x, timesteps, motion):
        v = velocity_target(x0, noise).clone()
        v[:, :, 0] = 100.0  # frame 0 is given, not generated: its prediction must not count
        return v

    assert flow_matching_loss(oracle, x0, noise, torch.tensor([0.3, 0.7]), torch.zeros(2)).item() == 0.0
