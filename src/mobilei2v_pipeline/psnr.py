"""The project's one PSNR: 10 log10(peak^2 / MSE), the MSE pooled over every element of both arrays.

Videos take their pixel range as the peak (255 for uint8 frames, 2 for [-1, 1] tensors), so a figure says
how close the pixels are whatever the batch; a graph's output, whose scale is its own, takes the range of
the reference output. Every `*_psnr_db` the pipeline reports comes from here.
"""

from __future__ import annotations

import numpy as np
import torch

UINT8_PEAK = 255.0  # frames as they are shown
MODEL_RANGE_PEAK = 2.0  # videos in the models' [-1, 1]


def psnr_db(
    x: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor, peak: float | None = None
) -> float:
    """PSNR in dB of `x` against `reference` (same shape); `peak` None: the reference's value range. Infinite
    for identical arrays."""
    x, reference = _float64(x), _float64(reference)
    if x.shape != reference.shape:
        raise ValueError(f"PSNR of arrays of different shapes: {x.shape} and {reference.shape}")
    mse = float(np.mean((x - reference) ** 2))
    if peak is None:
        peak = float(reference.max() - reference.min()) or 1.0
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def _float64(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float64)
