"""Video figures (PSNR, SSIM, jitter, rank correlation, relative error) on videos whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from mobilei2v_pipeline.psnr import UINT8_PEAK, psnr_db
from mobilei2v_pipeline.video import metrics


def _video(seed: int = 0, frames: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 24, 32, 3), dtype=np.uint8)


def test_psnr_and_ssim_of_identical_and_different_videos():
    video = _video()
    assert psnr_db(video, video, UINT8_PEAK) == float("inf")
    assert metrics.video_ssim(video, video) == pytest.approx(1.0, abs=1e-6)
    shifted = np.clip(video.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 25 < psnr_db(video, shifted, UINT8_PEAK) < 30  # an offset of about 10/255
    assert metrics.video_ssim(video, _video(1)) < 0.1  # independent noise


def test_ssim_is_scikit_images_on_the_same_frames():
    """Against scikit-image's SSIM with the same settings (Gaussian 11x11 window of sigma 1.5, population
    covariance, range 1): per channel and frame, 'valid' windows only, then the mean."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48]
    scene = np.stack([np.sin(x / 5 + t) * np.cos(y / 7) for t in range(3)])[..., None] * [1.0, 0.6, -0.8]
    video = np.clip(127.5 + 100 * scene, 0, 255).astype(np.uint8)
    for noise in (4, 20, 60):
        degraded = np.clip(video + rng.normal(0, noise, video.shape), 0, 255).astype(np.uint8)
        expected = np.mean(
            [
                structural_similarity(
                    frame / 255.0,
                    reference / 255.0,
                    data_range=1.0,
                    channel_axis=-1,
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                )
                for frame, reference in zip(degraded, video, strict=True)
            ]
        )
        assert metrics.video_ssim(degraded, video) == pytest.approx(expected, abs=1e-5), noise


def test_temporal_jitter_is_zero_for_uniform_change_and_large_for_flicker():
    ramp = np.stack([np.full((8, 8, 3), 20 * t, dtype=np.uint8) for t in range(5)])
    assert metrics.temporal_jitter(ramp) == pytest.approx(0.0, abs=1e-6)
    flicker = np.stack([np.full((8, 8, 3), 200 * (t % 2), dtype=np.uint8) for t in range(5)])
    assert metrics.temporal_jitter(flicker) == pytest.approx(2 * 200 / 255)
    with pytest.raises(ValueError, match="at least 3 frames"):
        metrics.temporal_jitter(ramp[:2])


def test_rank_correlation():
    assert metrics.rank_correlation([1, 2, 3], [10, 20, 90]) == pytest.approx(1.0)
    assert metrics.rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(metrics.rank_correlation([1, 1, 1], [1, 2, 3]))


def test_mean_relative_error_weighs_each_miss_by_what_was_asked():
    # |1.5 - 1| / 1 = 0.5 and |6 - 8| / 8 = 0.25: the same figure whatever the motion's scale.
    assert metrics.mean_relative_error([1.5, 6.0], [1.0, 8.0]) == pytest.approx(0.375)
    assert metrics.mean_relative_error([4.0, 4.0], [4.0, 4.0]) == 0.0
    with pytest.raises(ValueError, match="positive"):
        metrics.mean_relative_error([1.0], [0.0])
