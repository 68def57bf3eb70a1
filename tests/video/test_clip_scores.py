"""Clip scores on frames with known answers: a texture moved by a known shift, blurred, flat, cut."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mobilei2v_pipeline.video.clip_scores import (
    brightness,
    contrast,
    motion_score,
    scene_cut_score,
    score_clip,
    sharpness,
)


def texture(height: int, width: int, seed: int = 0, hue: tuple[int, int] | None = None) -> np.ndarray:
    """Smooth random colour blobs (structure for optical flow); optionally with hues limited to a range."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (max(2, height // 8), max(2, width // 8), 3)).astype(np.float32)
    image = np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255).astype(
        np.uint8
    )
    if hue is not None:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = hue[0] + hsv[..., 0].astype(np.int32) * (hue[1] - hue[0]) // 180
        hsv[..., 1] = np.maximum(hsv[..., 1], 120)
        image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return image


def translated(height: int, width: int, frames: int, dx: float, dy: float = 0.0, seed: int = 0) -> np.ndarray:
    """A window panning over a larger texture by (dx, dy) pixels per frame, sub-pixel accurate."""
    pad = int(np.ceil((abs(dx) + abs(dy)) * frames)) + 2
    canvas = texture(height + 2 * pad, width + 2 * pad, seed)
    out = []
    for t in range(frames):
        shift = np.float32([[1, 0, -(pad + dx * t)], [0, 1, -(pad + dy * t)]])
        out.append(cv2.warpAffine(canvas, shift, (width, height), flags=cv2.INTER_LINEAR))
    return np.stack(out)


@pytest.mark.parametrize(
    ("dx", "dy"), [(1.0, 0.0), (2.0, 0.0), (0.0, 2.0), (-3.0, 0.0), (1.5, 1.5), (0.5, 0.0)]
)
def test_motion_score_is_the_shift_at_the_reference_short_side(dx, dy):
    clip = translated(96, 160, 9, dx, dy)
    expected = np.hypot(dx, dy) * 256 / 96
    assert motion_score(clip) == pytest.approx(expected, rel=0.15)
    assert motion_score(clip, reference_short_side=96) == pytest.approx(np.hypot(dx, dy), rel=0.15)


def test_a_static_clip_has_no_motion():
    clip = np.repeat(texture(96, 160)[None], 9, axis=0)
    assert motion_score(clip) < 0.05


def test_motion_score_does_not_depend_on_resolution():
    # The same pan twice: 4 px per frame at short side 192, and halved, 2 px per frame at short side 96.
    large = translated(192, 320, 9, 4.0)
    small = np.stack([cv2.resize(frame, (160, 96), interpolation=cv2.INTER_AREA) for frame in large])
    large_score, small_score = motion_score(large), motion_score(small)
    assert large_score == pytest.approx(4.0 * 256 / 192, rel=0.15)
    assert small_score == pytest.approx(large_score, rel=0.1)


def test_motion_score_uses_at_most_max_pairs_pairs():
    # Frames 0-4 still, then a jump: with one pair (the first) there is no motion, with all pairs there is.
    still = np.repeat(texture(96, 160)[None], 5, axis=0)
    clip = np.concatenate([still, translated(96, 160, 4, 3.0, seed=0)])
    assert motion_score(clip, max_pairs=1) < 0.05
    assert motion_score(clip, max_pairs=8) > 1.0


def test_blur_lowers_sharpness():
    clip = translated(96, 160, 3, 1.0)
    blurred = np.stack([cv2.GaussianBlur(frame, (0, 0), 2.0) for frame in clip])
    more_blurred = np.stack([cv2.GaussianBlur(frame, (0, 0), 4.0) for frame in clip])
    assert sharpness(blurred) < 0.6 * sharpness(clip)
    assert sharpness(more_blurred) < sharpness(blurred)


def test_a_flat_clip_has_no_sharpness_or_contrast():
    flat = np.full((4, 96, 160, 3), 77, dtype=np.uint8)
    assert sharpness(flat) == pytest.approx(0.0, abs=1e-9)
    assert contrast(flat) == pytest.approx(0.0, abs=1e-9)
    assert contrast(translated(96, 160, 4, 1.0)) > 10


def test_brightness_spans_black_to_white():
    assert brightness(np.zeros((3, 64, 64, 3), dtype=np.uint8)) == pytest.approx(0.0, abs=0.5)
    assert brightness(np.full((3, 64, 64, 3), 255, dtype=np.uint8)) == pytest.approx(255.0, abs=0.5)
    grey = np.full((3, 64, 64, 3), 128, dtype=np.uint8)
    assert brightness(grey) == pytest.approx(128.0, abs=1.0)


def test_contrast_is_the_per_frame_spread_not_the_change_between_frames():
    # Each frame flat but the frames differ: no contrast within any frame.
    clip = np.stack([np.full((32, 32, 3), value, dtype=np.uint8) for value in (0, 128, 255)])
    assert contrast(clip) == pytest.approx(0.0, abs=1e-9)
    half = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    half[:, :, 16:] = 255
    assert contrast(half) == pytest.approx(127.5, abs=1.0)


def test_one_shot_scores_near_one_and_a_cut_scores_low():
    shot = translated(96, 160, 8, 1.0, seed=1)
    assert scene_cut_score(shot) > 0.9
    warm = np.repeat(texture(96, 160, seed=2, hue=(0, 25))[None], 4, axis=0)
    cool = np.repeat(texture(96, 160, seed=3, hue=(90, 125))[None], 4, axis=0)
    assert scene_cut_score(warm) > 0.9 and scene_cut_score(cool) > 0.9
    assert scene_cut_score(np.concatenate([warm, cool])) < 0.5  # the curation threshold


def test_scene_cut_score_of_a_single_frame_is_one():
    assert scene_cut_score(texture(64, 64)[None]) == 1.0


def test_score_clip_gives_every_score():
    clip = translated(96, 160, 9, 2.0)
    scores = score_clip(clip, reference_short_side=128)
    assert set(scores) == {"motion_score", "sharpness", "brightness", "contrast", "scene_cut_score"}
    assert all(isinstance(value, float) for value in scores.values())
    assert scores["motion_score"] == pytest.approx(2.0 * 128 / 96, rel=0.15)
    assert scores["brightness"] == pytest.approx(brightness(clip))
