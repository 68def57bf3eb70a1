"""The project's one PSNR: pooled over every element, the pixel range or the reference's range as the peak."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mobilei2v_pipeline.psnr import MODEL_RANGE_PEAK, UINT8_PEAK, psnr_db


def test_a_constant_error_on_a_known_peak():
    video = torch.linspace(-1, 1, 2 * 3 * 5 * 8 * 8).reshape(2, 3, 5, 8, 8)
    assert psnr_db(video, video, MODEL_RANGE_PEAK) == math.inf
    # 0.1 off everywhere on a range of 2: 10 log10(4 / 0.01) = 26.02 dB, tensors or arrays alike.
    assert psnr_db(video + 0.1, video, MODEL_RANGE_PEAK) == pytest.approx(26.0206, abs=1e-4)
    assert psnr_db((video + 0.1).numpy(), video.numpy(), MODEL_RANGE_PEAK) == pytest.approx(26.0206, abs=1e-4)
    frames = np.full((5, 8, 8, 3), 100, dtype=np.uint8)
    assert psnr_db(frames + 10, frames, UINT8_PEAK) == pytest.approx(10 * math.log10(255**2 / 100))


def test_pooled_over_the_batch_not_averaged_per_video():
    reference = np.zeros((2, 4))
    x = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])  # one video exact, one off by 1
    assert psnr_db(x, reference, 1.0) == pytest.approx(10 * math.log10(1 / 0.5))


def test_an_output_without_a_peak_takes_the_reference_range():
    reference = np.array([0.0, 4.0])
    assert psnr_db(reference + 0.4, reference) == pytest.approx(10 * math.log10(16 / 0.16))
    with pytest.raises(ValueError, match="different shapes"):
        psnr_db(np.zeros(3), np.zeros(4))
