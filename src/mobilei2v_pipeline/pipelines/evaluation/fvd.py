"""Fréchet video distance with a local TorchScript I3D (nothing is downloaded).

The model file is StyleGAN-V's `i3d_torchscript.pt` convention: called as
`model(videos, rescale=False, resize=True, return_features=True)` on float videos (B, 3, T, H, W) in
[-1, 1], it returns one feature vector per video.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch


@torch.no_grad()
def i3d_features(videos: np.ndarray, model: torch.jit.ScriptModule, batch_size: int = 8) -> np.ndarray:
    """uint8 videos (N, T, H, W, 3) -> features (N, D)."""
    features = []
    for start in range(0, len(videos), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(videos[start : start + batch_size]))
        batch = batch.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
        features.append(model(batch, rescale=False, resize=True, return_features=True).double().numpy())
    return np.concatenate(features)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = scipy.linalg.sqrtm(cov_a @ cov_b, disp=False)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root.real))


class FrechetVideoDistance:
    """FVD against a fixed set of real videos: the I3D is loaded and the real features computed once."""

    def __init__(self, i3d_path: str, real: np.ndarray):
        self.model = torch.jit.load(i3d_path, map_location="cpu").eval()
        self.real_features = i3d_features(real, self.model)

    def __call__(self, generated: np.ndarray) -> float:
        return frechet_distance(i3d_features(generated, self.model), self.real_features)
