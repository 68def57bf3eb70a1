"""The synthetic raw-video generator: the plan, determinism, and that reject kinds are what they claim."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace

import av
import numpy as np
import pytest

from mobilei2v_pipeline.video.clip_scores import brightness, motion_score, scene_cut_score
from mobilei2v_pipeline.video.synthetic import (
    CAMERA_MOTIONS,
    REJECT_KINDS,
    SyntheticVideoSpec,
    fractal_texture,
    plan_synthetic_videos,
    render_frames,
    synthetic_video_bytes,
)

PLAN = dict(width=160, height=96, fps=12, seconds=1.5, min_speed=0.2, max_speed=4.0, num_sprites=3)
ALL_REJECTS = {"dark": 1, "static": 1, "scene_cut": 1}


def plan(seed: int = 7, num_videos: int = 6, rejects: dict[str, int] | None = None, **overrides):
    kwargs = {**PLAN, **overrides}
    return plan_synthetic_videos(
        seed, num_videos, rejects=ALL_REJECTS if rejects is None else rejects, **kwargs
    )


def spec_of_kind(kind: str, seed: int = 7) -> SyntheticVideoSpec:
    return next(spec for spec in plan(seed) if spec.kind == kind)


def frames_of(spec: SyntheticVideoSpec) -> np.ndarray:
    return np.stack(list(render_frames(spec)))


def test_plan_has_the_requested_count_and_kinds():
    specs = plan(num_videos=8, rejects={"dark": 2, "static": 1})
    assert len(specs) == 8
    assert Counter(spec.kind for spec in specs) == {"normal": 5, "dark": 2, "static": 1}
    assert len({spec.name for spec in specs}) == 8
    assert all(spec.kind in spec.name for spec in specs)
    for spec in specs:
        assert (spec.width, spec.height, spec.fps, spec.num_sprites) == (160, 96, 12, 3)
        assert spec.num_frames == 18


def test_plan_without_rejects_is_all_normal():
    specs = plan(num_videos=3, rejects={})
    assert [spec.kind for spec in specs] == ["normal"] * 3


def test_normal_speeds_are_log_spaced_from_min_to_max():
    # Speeds 0.1, 1, 10, 100: sprites move at 1-1.5x their video's speed, the camera at 0.7-1x, so each
    # video's sprite speed falls in its own decade only if the spacing is logarithmic (linear would put
    # three of them above 30).
    specs = plan(num_videos=4, rejects={}, min_speed=0.1, max_speed=100.0)
    sprite = sorted(spec.sprite_speed for spec in specs)
    for speed, base in zip(sprite, [0.1, 1.0, 10.0, 100.0], strict=True):
        assert base <= speed <= 2 * base
    for spec in specs:
        assert 0 <= spec.camera_speed <= spec.sprite_speed


def test_speeds_cover_the_range_with_many_videos():
    specs = plan(num_videos=12, rejects={}, min_speed=0.2, max_speed=4.0)
    sprite = np.array([spec.sprite_speed for spec in specs])
    assert 0.2 <= sprite.min() <= 0.4  # the slowest video at min_speed, its sprites at 1-2x that
    assert 4.0 <= sprite.max() <= 8.0


def test_reject_videos_move_at_a_middle_speed_except_static():
    specs = {spec.kind: spec for spec in plan(min_speed=0.25, max_speed=4.0)}
    middle = 1.0  # geometric mean of 0.25 and 4
    for kind in ("dark", "scene_cut"):
        assert middle <= specs[kind].sprite_speed <= 2 * middle
    assert specs["static"].camera_speed == specs["static"].sprite_speed == 0.0
    assert specs["static"].camera == "still"


def test_unknown_reject_kind_raises():
    with pytest.raises(ValueError, match="blurry"):
        plan(rejects={"blurry": 1})


@pytest.mark.parametrize("num_videos", [3, 2])
def test_rejects_must_leave_a_normal_video(num_videos):
    with pytest.raises(ValueError, match="no normal video"):
        plan(num_videos=num_videos, rejects=ALL_REJECTS)


def test_same_seed_same_plan_different_seed_different_plan():
    assert plan(seed=3) == plan(seed=3)
    assert plan(seed=3) != plan(seed=4)
    assert len({spec.seed for spec in plan(seed=3)}) == 6  # every video gets its own content


def test_same_seed_gives_identical_bytes_different_seed_does_not():
    spec = replace(spec_of_kind("normal"), num_frames=8)
    first = synthetic_video_bytes(spec)
    assert synthetic_video_bytes(spec) == first
    assert synthetic_video_bytes(replace(spec, seed=spec.seed + 1)) != first
    other = replace(plan(seed=8)[0], num_frames=8)
    assert synthetic_video_bytes(other) != first


def test_video_bytes_decode_to_the_spec():
    spec = replace(spec_of_kind("normal"), num_frames=10)
    with av.open(io.BytesIO(synthetic_video_bytes(spec, crf=28, preset="ultrafast"))) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.average_rate == 12
    assert len(frames) == 10
    assert (frames[0].width, frames[0].height) == (160, 96)


@pytest.mark.parametrize("kind", ["normal", *REJECT_KINDS])
def test_render_frames_yields_num_frames_frames(kind):
    spec = spec_of_kind(kind)
    frames = list(render_frames(spec))
    assert len(frames) == spec.num_frames == 18
    for frame in frames:
        assert frame.shape == (96, 160, 3)
        assert frame.dtype == np.uint8


def test_rendering_is_deterministic():
    spec = spec_of_kind("normal")
    np.testing.assert_array_equal(frames_of(spec), frames_of(spec))


def test_static_video_does_not_move_but_normal_ones_do():
    static = frames_of(spec_of_kind("static"))
    assert np.abs(np.diff(static.astype(np.int16), axis=0)).max() <= 1
    assert motion_score(static) < 0.1  # below the curation threshold min_motion
    for spec in plan(rejects={}, num_videos=3):
        frames = frames_of(spec)
        assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean() > 0.5
        assert motion_score(frames) > 0.1


def test_dark_video_is_dark_and_normal_ones_are_not():
    assert brightness(frames_of(spec_of_kind("dark"))) < 20  # the curation threshold min_brightness
    for spec in plan(rejects={}, num_videos=3):
        assert brightness(frames_of(spec)) > 40


@pytest.mark.parametrize("seed", [0, 7, 42])
def test_scene_cut_video_cuts_at_its_midpoint(seed):
    frames = frames_of(spec_of_kind("scene_cut", seed=seed))
    middle = len(frames) // 2
    assert scene_cut_score(frames[middle - 2 : middle + 2]) < 0.5  # the curation threshold
    assert scene_cut_score(frames[:middle]) > 0.9
    assert scene_cut_score(frames[middle:]) > 0.9


def test_normal_videos_take_every_camera_motion_in_turn():
    specs = plan(num_videos=8, rejects={})
    assert [spec.camera for spec in specs] == [*CAMERA_MOTIONS, *CAMERA_MOTIONS]
    for spec in specs:
        assert (spec.camera_speed == 0) == (spec.camera == "still")


@pytest.mark.parametrize("camera", CAMERA_MOTIONS)
def test_every_camera_motion_moves_the_picture_about_as_fast_as_planned(camera):
    # A moving camera moves every pixel by about its speed; with a still camera only the sprites move, a part
    # of the frame, so the mean flow is a fraction of their speed.
    spec = next(s for s in plan(num_videos=8, rejects={}, max_speed=2.0) if s.camera == camera)
    spec = replace(spec, camera_speed=1.0 if camera != "still" else 0.0, sprite_speed=1.0)
    score = motion_score(frames_of(spec), reference_short_side=96)
    low, high = (0.05, 0.6) if camera == "still" else (0.4, 2.0)
    assert low < score < high


def radial_amplitude(image: np.ndarray) -> np.ndarray:
    """Mean amplitude spectrum of a grey image in octave-wide frequency bands, lowest first."""
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean())))
    h, w = image.shape
    radius = np.hypot(*np.meshgrid(np.arange(w) - w // 2, np.arange(h) - h // 2))
    bands = [(2, 4), (4, 8), (8, 16), (16, 32), (32, 64)]
    return np.array([spectrum[(radius >= lo) & (radius < hi)].mean() for lo, hi in bands])


def test_textures_have_a_falling_spectrum_not_white_noise():
    # Natural images: amplitude about 1/f, halving per octave. White noise: flat.
    texture = fractal_texture(np.random.default_rng(0), 128, 128)[..., 0]
    amplitude = radial_amplitude(texture)
    ratios = amplitude[1:] / amplitude[:-1]
    assert np.all(ratios < 0.75), ratios
    assert np.all(ratios > 0.2), ratios
    noise = radial_amplitude(np.random.default_rng(0).normal(size=(128, 128)))
    assert np.all(noise[1:] / noise[:-1] > 0.8)


def test_frames_are_mostly_smooth_with_edges():
    # Neighbouring pixels of natural frames are close; per-pixel noise would make them differ.
    frames = frames_of(spec_of_kind("normal")).astype(np.float32)
    step = np.abs(np.diff(frames, axis=2)).mean()
    assert step < 6.0
