"""probe_video, clip_starts and read_clips on small videos made on the spot: good, broken, like a phone's."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from broken_videos import EXPECTED_REASONS, write_broken_videos
from phone_videos import irregular_times_ms, upright_frames, write_mp4
from PIL import Image

from mobilei2v_pipeline.video.decode import (
    ClipSpec,
    VideoReadError,
    clip_starts,
    clip_target_times,
    probe_video,
    read_clips,
    sample_nearest,
    upright_rotation,
)
from mobilei2v_pipeline.video.encode import encode_mp4

HEIGHT, WIDTH = 96, 160


def texture_frames(count: int, height: int = HEIGHT, width: int = WIDTH, step: int = 2) -> list[np.ndarray]:
    """A blocky random texture panned `step` px per frame: every frame differs from every other."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (height // 4 + 1, (width + count * step) // 4 + 1, 3), dtype=np.uint8)
    base = np.kron(blocks, np.ones((4, 4, 1), dtype=np.uint8))
    return [np.ascontiguousarray(base[:height, i * step : i * step + width]) for i in range(count)]


def smooth_frames(count: int, height: int = HEIGHT, width: int = WIDTH) -> list[np.ndarray]:
    """Slow colour waves: content that scales and compresses without surprises."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return [
        np.stack(
            [127 + 100 * np.sin(x / 17 + t), 127 + 100 * np.cos(y / 13 - t), 127 + 80 * np.sin((x + y) / 23)],
            axis=-1,
        ).astype(np.uint8)
        for t in range(count)
    ]


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps,
    codec: str = "libx264",
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_gif(path: Path, frames: list[np.ndarray], duration_ms: int) -> Path:
    images = [Image.fromarray(image) for image in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of the file in order, full size, as RGB: the ground truth clips are compared with."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def source_index(frame: np.ndarray, reference: list[np.ndarray]) -> int:
    """Index of the reference frame closest to `frame` (same size)."""
    return int(np.argmin([np.abs(frame.astype(np.int16) - ref).mean() for ref in reference]))


def assert_clips_are_source_frames(clips, reference: list[np.ndarray], spec: ClipSpec) -> None:
    for clip in clips:
        expected = [clip.start_frame + k * spec.frame_interval for k in range(spec.frames_per_clip)]
        assert [source_index(frame, reference) for frame in clip.frames] == expected


def assert_same_clips(a, b) -> None:
    assert [clip.start_frame for clip in a] == [clip.start_frame for clip in b]
    for clip_a, clip_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(clip_a.frames, clip_b.frames)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """H.264 MP4s: one from encode_mp4 (one keyframe), one with short GOPs, B-frames and an NTSC rate."""
    folder = tmp_path_factory.mktemp("videos")
    frames = texture_frames(36)
    (folder / "encode_mp4.mp4").write_bytes(encode_mp4(frames, fps=12))
    short_gop = write_video(
        folder / "short_gop.mp4", frames, Fraction(30000, 1001), options={"g": "5", "bf": "2", "threads": "1"}
    )
    (folder / "smooth.mp4").write_bytes(encode_mp4(smooth_frames(8), fps=12))
    return {"encode_mp4": folder / "encode_mp4.mp4", "short_gop": short_gop, "smooth": folder / "smooth.mp4"}


def test_probe_video_describes_an_mp4(videos):
    path = videos["encode_mp4"]
    info = probe_video(path)
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.codec == "h264"
    assert info.fps == pytest.approx(12.0)
    assert info.num_frames == 36
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    assert info.size_bytes == path.stat().st_size
    assert "mp4" in info.container
    assert info.as_dict()["num_frames"] == 36


def test_probe_video_reads_an_ntsc_frame_rate(videos):
    info = probe_video(videos["short_gop"])
    assert info.fps == pytest.approx(30000 / 1001)
    assert info.num_frames == 36


SPECS = [
    ClipSpec(frames_per_clip=4, frame_interval=2, clips_per_video=3, height=HEIGHT, width=WIDTH),
    ClipSpec(
        frames_per_clip=5, frame_interval=3, clips_per_video=2, height=64, width=64
    ),  # square: crop sides
    ClipSpec(frames_per_clip=8, frame_interval=1, clips_per_video=4, height=40, width=112),  # wide: crop rows
    ClipSpec(frames_per_clip=9, frame_interval=1, clips_per_video=1, height=128, width=224),  # upscaled
]


@pytest.mark.parametrize("video", ["encode_mp4", "short_gop"])
@pytest.mark.parametrize(
    "spec", SPECS, ids=lambda s: f"{s.frames_per_clip}x{s.frame_interval}-{s.height}x{s.width}"
)
def test_seeking_gives_the_same_clips_as_decoding_from_the_start(videos, video, spec):
    path = videos[video]
    info = probe_video(path)
    seeked = read_clips(path, info, spec, seek=True)
    linear = read_clips(path, info, spec, seek=False)
    assert [clip.start_frame for clip in seeked] == clip_starts(info.num_frames, spec)
    assert_same_clips(seeked, linear)
    for clip in seeked:
        assert clip.frames.dtype == np.uint8
        assert clip.frames.shape == (spec.frames_per_clip, spec.height, spec.width, 3)
        assert clip.frames.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("video", ["encode_mp4", "short_gop"])
def test_clips_hold_the_right_source_frames(videos, video):
    path = videos[video]
    info = probe_video(path)
    spec = ClipSpec(frames_per_clip=5, frame_interval=2, clips_per_video=3, height=HEIGHT, width=WIDTH)
    clips = read_clips(path, info, spec)
    assert len(clips) == 3
    assert_clips_are_source_frames(clips, decode_all(path), spec)


@pytest.mark.parametrize(
    ("height", "width", "rows", "cols"),
    [
        (96, 96, slice(0, 96), slice(32, 128)),  # narrower than the source: the centre columns
        (96, 48, slice(0, 96), slice(56, 104)),
        (48, 160, slice(24, 72), slice(0, 160)),  # wider than the source: the centre rows
    ],
)
def test_a_different_aspect_is_centre_cropped_without_scaling(videos, height, width, rows, cols):
    path = videos["encode_mp4"]
    spec = ClipSpec(frames_per_clip=3, frame_interval=1, clips_per_video=1, height=height, width=width)
    [clip] = read_clips(path, probe_video(path), spec)
    reference = decode_all(path)
    for k, frame in enumerate(clip.frames):
        expected = reference[clip.start_frame + k][rows, cols]
        assert np.abs(frame.astype(np.int16) - expected).mean() < 1.0


def test_a_smaller_target_of_the_same_aspect_is_the_whole_frame_scaled(videos):
    path = videos["smooth"]
    spec = ClipSpec(
        frames_per_clip=2, frame_interval=1, clips_per_video=1, height=HEIGHT // 2, width=WIDTH // 2
    )
    [clip] = read_clips(path, probe_video(path), spec)
    full = decode_all(path)[clip.start_frame]
    expected = cv2.resize(full, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
    assert np.abs(clip.frames[0].astype(np.int16) - expected).mean() < 4.0
    cropped = full[HEIGHT // 4 : HEIGHT // 4 + HEIGHT // 2, WIDTH // 4 : WIDTH // 4 + WIDTH // 2]
    assert np.abs(clip.frames[0].astype(np.int16) - cropped).mean() > 10.0  # scaled, not cut out


# --- clip_starts ---


def _spec(frames_per_clip: int, frame_interval: int, clips_per_video: int) -> ClipSpec:
    return ClipSpec(frames_per_clip, frame_interval, clips_per_video, height=64, width=64)


def test_span_counts_first_to_last_frame():
    assert _spec(9, 2, 1).span == 17
    assert _spec(2, 5, 1).span == 6


@pytest.mark.parametrize(("frames_per_clip", "frame_interval"), [(1, 1), (9, 0)])
def test_a_clip_spec_without_motion_is_refused(frames_per_clip, frame_interval):
    with pytest.raises(ValueError, match="at least 2 frames"):
        _spec(frames_per_clip, frame_interval, 1)


def test_a_video_exactly_one_span_long_gives_one_clip_at_frame_zero():
    assert clip_starts(17, _spec(9, 2, 3)) == [0]


def test_a_video_shorter_than_a_span_gives_no_clip():
    assert clip_starts(16, _spec(9, 2, 3)) == []
    assert clip_starts(0, _spec(9, 2, 3)) == []


def test_a_single_clip_is_taken_from_the_middle():
    assert clip_starts(100, _spec(9, 2, 1)) == [41]  # frames 41..57 of 0..99


def test_clips_do_not_overlap_so_a_short_video_gives_fewer():
    assert clip_starts(40, _spec(9, 2, 3)) == [0, 23]
    assert clip_starts(33, _spec(9, 2, 3)) == [8]  # room for one: the middle one


@pytest.mark.parametrize(
    ("num_frames", "frames_per_clip", "frame_interval", "clips_per_video"),
    [(36, 4, 2, 3), (72, 9, 2, 3), (100, 8, 1, 5), (1000, 9, 2, 7), (51, 9, 2, 3), (30, 2, 1, 15)],
)
def test_clips_are_spread_evenly_over_the_whole_video(
    num_frames, frames_per_clip, frame_interval, clips_per_video
):
    spec = _spec(frames_per_clip, frame_interval, clips_per_video)
    starts = clip_starts(num_frames, spec)
    assert len(starts) == min(clips_per_video, (num_frames - spec.span) // spec.span + 1)
    assert starts[0] == 0
    assert starts[-1] == num_frames - spec.span  # the last clip ends on the last frame
    gaps = np.diff(starts)
    assert (gaps >= spec.span).all()  # no frame is in two clips
    assert gaps.max() - gaps.min() <= 1


# --- broken files ---


@pytest.fixture(scope="module")
def broken_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("broken")
    assert write_broken_videos(folder) == EXPECTED_REASONS
    return folder


@pytest.mark.parametrize(("name", "reason"), sorted(EXPECTED_REASONS.items()))
def test_a_broken_file_raises_its_reason(broken_folder, name, reason):
    path = broken_folder / name
    assert path.exists()
    spec = ClipSpec(frames_per_clip=9, frame_interval=1, clips_per_video=1, height=64, width=64)
    with pytest.raises(VideoReadError) as raised:
        info = probe_video(path, min_short_side=64)
        read_clips(path, info, spec)
    assert raised.value.reason == reason
    assert str(raised.value)  # a sentence for the quarantine table


def test_min_short_side_decides_too_small(broken_folder):
    info = probe_video(broken_folder / "too_small.mp4", min_short_side=32)  # 48x32 passes at 32
    assert (info.width, info.height) == (48, 32)


def test_a_clip_longer_than_the_video_is_too_few_frames(videos):
    path = videos["encode_mp4"]
    spec = ClipSpec(frames_per_clip=19, frame_interval=2, clips_per_video=1, height=64, width=64)  # span 37
    with pytest.raises(VideoReadError) as raised:
        read_clips(path, probe_video(path), spec)
    assert raised.value.reason == "too_few_frames"


# --- other containers ---

CONTAINERS = {
    "vp9.webm": ("libvpx-vp9", "webm", {"deadline": "realtime", "cpu-used": "8"}, "yuv420p"),
    "ffv1.mkv": ("ffv1", "matroska", None, "yuv420p"),
    "h264.mkv": ("libx264", "matroska", {"g": "5"}, "yuv420p"),
    "mpeg4.avi": ("mpeg4", "avi", {"g": "5"}, "yuv420p"),
    "h264.mov": ("libx264", "mov", {"g": "5"}, "yuv420p"),
    "mjpeg.mov": ("mjpeg", "mov", None, "yuvj420p"),
}


@pytest.fixture(scope="module")
def container_videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("containers")
    frames = texture_frames(24)
    paths = {
        name: write_video(folder / name, frames, 12, codec, fmt, options, pix_fmt)
        for name, (codec, fmt, options, pix_fmt) in CONTAINERS.items()
    }
    paths["pillow.gif"] = write_gif(folder / "pillow.gif", frames, duration_ms=80)
    return paths


@pytest.mark.parametrize("name", [*CONTAINERS, "pillow.gif"])
def test_other_containers_decode(container_videos, name):
    path = container_videos[name]
    info = probe_video(path)
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.num_frames == 24
    assert info.fps == pytest.approx(12.5 if name.endswith(".gif") else 12.0)

    scaled = ClipSpec(frames_per_clip=4, frame_interval=2, clips_per_video=2, height=64, width=112)
    clips = read_clips(path, info, scaled)
    assert [clip.start_frame for clip in clips] == [0, 17]
    for clip in clips:
        assert clip.frames.shape == (4, 64, 112, 3)
        assert clip.frames.dtype == np.uint8
    assert_same_clips(clips, read_clips(path, info, scaled, seek=False))

    native = ClipSpec(frames_per_clip=4, frame_interval=3, clips_per_video=2, height=HEIGHT, width=WIDTH)
    assert_clips_are_source_frames(read_clips(path, info, native), decode_all(path), native)


# --- containers that seek badly or state no frame count ---


@pytest.mark.parametrize(
    ("codec", "fmt", "suffix"), [("libx264", "mpegts", "ts"), ("mpeg2video", "mpeg", "mpg")]
)
def test_seeking_in_mpeg_streams(tmp_path, codec, fmt, suffix):
    path = write_video(tmp_path / f"clip.{suffix}", texture_frames(36), 25, codec, fmt, {"g": "12"})
    info = probe_video(path)
    spec = ClipSpec(frames_per_clip=4, frame_interval=2, clips_per_video=3, height=64, width=64)
    linear = read_clips(path, info, spec, seek=False)
    assert len(linear) == 3
    assert_same_clips(read_clips(path, info, spec, seek=True), linear)


def test_a_webm_whose_audio_outlasts_the_video(tmp_path):
    path = tmp_path / "talk.webm"
    with av.open(str(path), "w", format="webm") as container:
        video = container.add_stream("libvpx-vp9", rate=12)
        video.height, video.width, video.pix_fmt = HEIGHT, WIDTH, "yuv420p"
        video.options = {"deadline": "realtime", "cpu-used": "8"}
        audio = container.add_stream("libopus", rate=48000)
        for image in texture_frames(12):  # 1 s of video
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        samples = audio.codec_context.frame_size
        for i in range(3 * 48000 // samples):  # 3 s of audio
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, samples), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, i * samples
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    info = probe_video(path)
    assert info.num_frames == 12
    spec = ClipSpec(frames_per_clip=9, frame_interval=1, clips_per_video=1, height=64, width=64)
    assert len(read_clips(path, info, spec)) == 1


def test_a_file_without_suffix_and_a_str_path_decode(tmp_path):
    path = tmp_path / "no_suffix"
    path.write_bytes(encode_mp4(texture_frames(12), fps=12))
    info = probe_video(str(path))
    spec = ClipSpec(frames_per_clip=4, frame_interval=1, clips_per_video=2, height=64, width=64)
    assert [clip.start_frame for clip in read_clips(str(path), info, spec)] == [0, 8]


# --- phone footage: rotation, variable frame rates, dropped frames, timestamps off the grid ---


def nearest_frame(times_s: list[float], target: float) -> int:
    """Index of the frame whose time is nearest the target; the earlier one on a tie."""
    return min(range(len(times_s)), key=lambda i: (abs(times_s[i] - target), i))


def _is_upright(frame: np.ndarray) -> bool:
    """upright_frames(): red grows downwards, blue rightwards."""
    red, blue = frame[..., 0].astype(int), frame[..., 2].astype(int)
    return red[-4:].mean() - red[:4].mean() > 100 and blue[:, -4:].mean() - blue[:, :4].mean() > 100


@pytest.mark.parametrize(
    ("name", "display_rotation", "tags", "stored_turns", "rotation"),
    [
        ("portrait.mp4", -90, {}, 1, 90),  # a phone held upright: landscape-coded, turned clockwise to show
        ("upside_down.mp4", 180, {}, 2, 180),
        ("other_way.mp4", 90, {}, 3, 270),
        ("legacy_tag.mkv", 0, {"rotate": "90"}, 1, 90),  # no display matrix, an old muxer's rotate tag
    ],
)
def test_a_rotated_video_is_turned_upright_before_resizing(
    tmp_path, name, display_rotation, tags, stored_turns, rotation
):
    upright = upright_frames(12)  # 160 x 96, portrait
    stored = [np.ascontiguousarray(np.rot90(frame, stored_turns)) for frame in upright]
    path = write_mp4(tmp_path / name, stored, display_rotation=display_rotation, metadata=tags)
    spec = ClipSpec(frames_per_clip=4, frame_interval=2, clips_per_video=1, height=80, width=48)
    [clip] = read_clips(path, probe_video(path), spec)
    assert clip.rotation == rotation
    assert clip.frames.shape == (4, 80, 48, 3)
    for k, frame in enumerate(clip.frames):
        assert _is_upright(frame)
        expected = cv2.resize(upright[clip.start_frame + 2 * k], (48, 80), interpolation=cv2.INTER_AREA)
        assert np.abs(frame.astype(np.int16) - expected).mean() < 6.0


def test_an_unrotated_video_is_left_as_it_is(videos):
    path = videos["encode_mp4"]
    spec = ClipSpec(frames_per_clip=3, frame_interval=1, clips_per_video=1, height=HEIGHT, width=WIDTH)
    [clip] = read_clips(path, probe_video(path), spec)
    assert clip.rotation == 0
    assert_clips_are_source_frames([clip], decode_all(path), spec)


@pytest.mark.parametrize(
    ("display_rotation", "rotate_tag", "expected"),
    [
        (-90, 0, 90),
        (90, 0, 270),
        (-180, 0, 180),
        (180, 0, 180),
        (-89.7, 0, 90),
        (0, 90, 90),
        (0, -90, 270),
        (0, 0, 0),
        (-90, 180, 90),
    ],
)
def test_upright_rotation_prefers_the_display_matrix_to_the_rotate_tag(
    display_rotation, rotate_tag, expected
):
    assert upright_rotation(display_rotation, rotate_tag) == expected


def _pairs(times: list[float]):
    return iter([(time, index) for index, time in enumerate(times)])


def test_sample_nearest_takes_the_frame_nearest_each_target_and_the_times_around_them():
    sample, read = sample_nearest(_pairs([0.0, 0.04, 0.3, 0.31, 0.5]), [0.0, 0.1, 0.2, 0.3], period=0.04)
    assert sample.complete and sample.frames == [0, 1, 2, 2]  # 0.1 is nearer 0.04, 0.2 nearer 0.3
    assert sample.times == [0.0, 0.04, 0.3]  # the 0.26 s hole is in the span
    assert read == [(0.04, 1), (0.3, 2)]  # the next clip may start between these two


def test_sample_nearest_refuses_a_first_frame_past_the_clip_and_a_stream_that_ends_early():
    late, _ = sample_nearest(_pairs([0.5, 0.54]), [0.0, 0.04], period=0.04)  # a seek that overshot
    assert not late.complete and late.frames == []
    ends = [0.0, 0.1, 0.2]
    shown, _ = sample_nearest(_pairs(ends), [0.1, 0.2, 0.28], period=0.1)  # the last frame is on screen
    assert shown.complete and shown.frames == [1, 2, 2]
    short, _ = sample_nearest(_pairs(ends), [0.1, 0.2, 0.35], period=0.1)
    assert not short.complete and short.frames == [1, 2]


def test_a_constant_frame_rate_file_gives_the_frames_index_sampling_gives(tmp_path):
    """The default run's videos: constant-rate H.264 with 2 s GOPs, 5 frames every 4th, 3 clips."""
    path = tmp_path / "cfr.mp4"
    path.write_bytes(encode_mp4(texture_frames(72), fps=24, keyint=48))
    info = probe_video(path)
    spec = ClipSpec(frames_per_clip=5, frame_interval=4, clips_per_video=3, height=HEIGHT, width=WIDTH)
    clips = read_clips(path, info, spec)
    assert [clip.start_frame for clip in clips] == clip_starts(72, spec) == [0, 28, 55]
    assert_clips_are_source_frames(clips, decode_all(path), spec)
    for clip in clips:
        assert clip.start_time_s == pytest.approx(clip.start_frame / 24)
        assert clip.effective_fps == pytest.approx(24)
        assert clip.max_gap_ms == pytest.approx(1000 / 24)
        assert clip.rotation == 0


def _jittered_ms(count: int) -> list[int]:
    jitter = np.random.default_rng(3).integers(-7, 8, count)  # under half of a 33 ms frame period
    return [max(0, round(i * 1000 / 30) + int(j)) for i, j in zip(range(count), jitter, strict=True)]


@pytest.mark.parametrize(
    ("name", "pts", "fps", "time_base"),
    [
        ("jittered.mp4", _jittered_ms(48), 30, Fraction(1, 1000)),
        (
            "quicktime_600.mp4",
            [round(i * 600 * 1001 / 30000) for i in range(48)],
            Fraction(30000, 1001),
            Fraction(1, 600),
        ),
        (
            "matroska_ms.mkv",
            [round(i * 1001 / 30) for i in range(48)],
            Fraction(30000, 1001),
            Fraction(1, 1000),
        ),
    ],
)
def test_timestamps_off_the_frame_grid_give_the_frames_of_the_grid(tmp_path, name, pts, fps, time_base):
    path = write_mp4(tmp_path / name, texture_frames(48), pts, fps=fps, time_base=time_base)
    info = probe_video(path)
    spec = ClipSpec(frames_per_clip=5, frame_interval=2, clips_per_video=3, height=HEIGHT, width=WIDTH)
    clips = read_clips(path, info, spec)
    assert len(clips) == 3
    assert_clips_are_source_frames(clips, decode_all(path), spec)
    assert_same_clips(clips, read_clips(path, info, spec, seek=False))


VFR_SPECS = [
    ClipSpec(frames_per_clip=5, frame_interval=4, clips_per_video=3, height=HEIGHT, width=WIDTH),  # base
    ClipSpec(frames_per_clip=9, frame_interval=1, clips_per_video=2, height=HEIGHT, width=WIDTH),  # smoke
]


@pytest.mark.parametrize("spec", VFR_SPECS, ids=["base", "smoke"])
@pytest.mark.parametrize(
    ("name", "kept", "times_ms", "fps", "gap_ms"),
    [
        # 90 frames in 5 s with gaps of 16 to 250 ms: it used to give "6 of 9 frames" and be quarantined
        ("vfr", list(range(90)), irregular_times_ms(90), 18, 250),
        # 24 fps with two frames in ten lost
        ("dropped", [i for i in range(72) if i % 10 not in (3, 4)], None, 24, 125),
    ],
)
def test_irregular_timestamps_give_whole_clips_of_the_nearest_frames(
    tmp_path, spec, name, kept, times_ms, fps, gap_ms
):
    times_ms = times_ms or [round(i * 1000 / fps) for i in kept]
    path = write_mp4(tmp_path / f"{name}.mp4", [texture_frames(90)[i] for i in kept], times_ms, fps=fps)
    info = probe_video(path)
    clips = read_clips(path, info, spec)
    assert len(clips) == spec.clips_per_video
    reference, times_s = decode_all(path), [t / 1000 for t in times_ms]
    for clip in clips:
        targets = clip_target_times(clip.start_frame, info.fps, spec)
        assert [source_index(frame, reference) for frame in clip.frames] == [
            nearest_frame(times_s, t) for t in targets
        ]
        assert 1000 / gap_ms <= clip.effective_fps <= 1000 / 16
    assert max(clip.max_gap_ms for clip in clips) == pytest.approx(gap_ms, abs=1)
    assert_same_clips(clips, read_clips(path, info, spec, seek=False))
