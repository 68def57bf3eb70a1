"""How much motion a reconstruction keeps, on clips whose motion is known: a texture moved k px per frame."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from mobilei2v_pipeline.pipelines.autoencoder.nodes import motion_survival
from mobilei2v_pipeline.video.clip_scores import motion_score


def panning(speed: float, frames: int = 9, height: int = 64, width: int = 112, seed: int = 0) -> np.ndarray:
    """A window moving right by `speed` pixels per frame over smooth random texture (uint8, T H W 3)."""
    rng = np.random.default_rng(seed)
    pad = int(np.ceil(speed * frames)) + 2
    coarse = rng.uniform(0, 255, ((height + 2 * pad) // 6, (width + 2 * pad) // 6, 3)).astype(np.float32)
    canvas = cv2.resize(coarse, (width + 2 * pad, height + 2 * pad), interpolation=cv2.INTER_CUBIC)
    shifts = [np.float32([[1, 0, -(pad + speed * t)], [0, 1, -pad]]) for t in range(frames)]
    return np.stack(
        [np.clip(cv2.warpAffine(canvas, m, (width, height)), 0, 255).astype(np.uint8) for m in shifts]
    )


SPEEDS = (0.5, 1.0, 2.0, 3.0)


def source_motion(clips: list[np.ndarray]) -> pd.Series:
    return pd.Series([motion_score(clip, 64) for clip in clips])


def test_a_texture_moved_k_pixels_per_frame_scores_about_k():
    for speed in SPEEDS:
        assert motion_score(panning(speed), reference_short_side=64) == pytest.approx(speed, rel=0.15)


def test_a_perfect_reconstruction_keeps_all_motion_and_its_order():
    clips = [panning(speed, seed=n) for n, speed in enumerate(SPEEDS)]
    figures = motion_survival(np.stack(clips), source_motion(clips), 64)
    assert figures["vae_val_motion_ratio"] == pytest.approx(1.0, abs=1e-6)
    assert figures["vae_val_motion_spearman"] == pytest.approx(1.0)


def test_a_still_reconstruction_keeps_no_motion():
    clips = [panning(speed, seed=n) for n, speed in enumerate(SPEEDS)]
    stills = np.stack([np.repeat(clip[:1], len(clip), axis=0) for clip in clips])
    assert motion_survival(stills, source_motion(clips), 64)["vae_val_motion_ratio"] < 0.05


def test_a_reconstruction_at_half_speed_keeps_half():
    clips = [panning(speed, seed=n) for n, speed in enumerate(SPEEDS)]
    halved = np.stack([panning(speed / 2, seed=n) for n, speed in enumerate(SPEEDS)])
    figures = motion_survival(halved, source_motion(clips), 64)
    assert figures["vae_val_motion_ratio"] == pytest.approx(0.5, abs=0.1)
    assert figures["vae_val_motion_spearman"] == pytest.approx(1.0)


def test_one_clip_has_a_ratio_but_no_rank_correlation():
    clip = panning(SPEEDS[0])
    figures = motion_survival(clip[None], source_motion([clip]), 64)
    assert set(figures) == {"vae_val_motion_ratio"}  # a metrics file takes finite figures only
