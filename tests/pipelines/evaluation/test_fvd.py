"""FVD: the Frechet distance of known Gaussians, and features read from a local TorchScript model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobilei2v_pipeline.pipelines.evaluation import fvd


def _video(seed: int = 0, frames: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, 24, 32, 3), dtype=np.uint8)


def test_frechet_distance_of_gaussians_with_equal_covariance_is_the_squared_mean_gap():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    b = a + np.array([1.0, 2.0, 0.0])
    assert fvd.frechet_distance(a, b) == pytest.approx(5.0, rel=1e-6)
    assert fvd.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


class _MeanColour(torch.nn.Module):
    """A stand-in with the I3D TorchScript call signature: features are the mean colour per video."""

    def forward(self, videos: torch.Tensor, rescale: bool, resize: bool, return_features: bool):
        return torch.cat([videos.mean(dim=(2, 3, 4)), videos.std(dim=(1, 2, 3, 4))[:, None]], dim=1)


def test_fvd_reads_features_from_a_local_torchscript_model(tmp_path):
    path = tmp_path / "i3d.pt"
    torch.jit.script(_MeanColour()).save(str(path))
    videos = np.stack([_video(seed) for seed in range(6)])
    distance = fvd.FrechetVideoDistance(str(path), videos)
    assert distance(videos) == pytest.approx(0.0, abs=1e-4)
    dark = (videos // 4).astype(np.uint8)
    assert distance(dark) > 0.1
