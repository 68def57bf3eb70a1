"""Video figures of the evaluation: agreement (PSNR, SSIM), temporal smoothness, rank correlation.

Videos are uint8 arrays (T, H, W, 3), as they are shown; every figure is computed on [0, 1] floats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F


def _unit(video: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float() / 255.0


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    return (kernel[:, None] * kernel[None, :]).expand(3, 1, size, size).contiguous()


def video_ssim(video: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) per channel and
    frame, 'valid' windows only."""
    x, y = _unit(video), _unit(reference)
    window = _gaussian_window()
    c1, c2 = 0.01**2, 0.03**2

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, window, groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim.mean())


def temporal_jitter(video: np.ndarray) -> float:
    """Mean absolute second difference over time, x[t+1] - 2 x[t] + x[t-1]: zero for a still or uniformly
    moving video, large for flicker. Needs three frames or more."""
    x = _unit(video)
    if len(x) < 3:
        raise ValueError(f"temporal jitter needs at least 3 frames, got {len(x)}")
    return float((x[2:] - 2 * x[1:-1] + x[:-2]).abs().mean())


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; nan when either side is constant."""
    a, b = pd.Series(np.asarray(a, dtype=float)), pd.Series(np.asarray(b, dtype=float))
    if a.nunique() < 2 or b.nunique() < 2:
        return float("nan")
    return float(a.corr(b, method="spearman"))


def mean_relative_error(measured: np.ndarray, requested: np.ndarray) -> float:
    """Mean of |measured - requested| / requested: motion adherence that weighs a miss at low requested
    motion as much as the same fraction at high motion. Requested values must be positive."""
    measured, requested = np.asarray(measured, dtype=float), np.asarray(requested, dtype=float)
    if (requested <= 0).any():
        raise ValueError("relative error needs positive requested values")
    return float(np.mean(np.abs(measured - requested) / requested))
