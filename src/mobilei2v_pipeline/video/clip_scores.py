"""Per-clip quality scores on uint8 RGB frames (frames, height, width, 3).

The motion score is the mean Farneback optical-flow magnitude between consecutive clip frames: a
weights-free stand-in for the paper's UniMatch score. It is expressed in pixels per clip frame at a
reference short side, so clips of any resolution share one scale, and is what the model is conditioned on.
"""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np


def _gray(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames])


def motion_score(frames: np.ndarray, reference_short_side: int = 256, max_pairs: int = 8) -> float:
    """Mean optical-flow magnitude, pixels per frame at `reference_short_side`, over up to `max_pairs` pairs.

    Larger frames are shrunk to the reference size first: the score is defined there, and flow on 720p frames
    costs about eight times more.
    """
    gray = _gray(frames)
    short_side = min(gray.shape[1:])
    if short_side > reference_short_side:
        scale = reference_short_side / short_side
        size = (round(gray.shape[2] * scale), round(gray.shape[1] * scale))
        gray = np.stack([cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in gray])
    pairs = np.unique(np.linspace(0, len(gray) - 2, min(max_pairs, len(gray) - 1)).round().astype(int))
    magnitudes = []
    for i in pairs:
        flow = cv2.calcOpticalFlowFarneback(gray[i], gray[i + 1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitudes.append(float(np.linalg.norm(flow, axis=-1).mean()))
    return float(np.mean(magnitudes)) * reference_short_side / min(gray.shape[1:])


def sharpness(frames: np.ndarray) -> float:
    """Mean variance of the Laplacian: low for blurred or flat frames."""
    return float(np.mean([cv2.Laplacian(g, cv2.CV_64F).var() for g in _gray(frames)]))


def brightness(frames: np.ndarray) -> float:
    """Mean luma, 0 to 255."""
    return float(_gray(frames).mean())


def contrast(frames: np.ndarray) -> float:
    """Mean per-frame standard deviation of luma."""
    return float(_gray(frames).reshape(len(frames), -1).std(axis=1).mean())


def scene_cut_score(frames: np.ndarray) -> float:
    """Lowest colour-histogram correlation between consecutive frames: near 1 for one shot, low at a cut.

    The histogram covers hue, saturation and value, so cuts between grey shots are seen too.
    """
    hists = []
    for frame in frames:
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 8], [0, 180, 0, 256, 0, 256])
        hists.append(cv2.normalize(hist, hist).flatten())
    scores = [cv2.compareHist(a, b, cv2.HISTCMP_CORREL) for a, b in pairwise(hists)]
    return float(min(scores)) if scores else 1.0


def score_clip(frames: np.ndarray, reference_short_side: int = 256) -> dict[str, float]:
    """All scores of one clip."""
    return {
        "motion_score": motion_score(frames, reference_short_side),
        "sharpness": sharpness(frames),
        "brightness": brightness(frames),
        "contrast": contrast(frames),
        "scene_cut_score": scene_cut_score(frames),
    }
