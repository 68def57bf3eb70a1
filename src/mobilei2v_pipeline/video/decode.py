"""Probe video files and decode fixed-length clips with PyAV, reading only the frames a clip needs.

Clips are cut by time: frame k of a clip is the decoded frame nearest to start + k x frame_interval / fps, so
variable-frame-rate phone video, files with dropped frames and coarse time bases give whole clips, and a
constant-frame-rate file gives exactly the frames an index would. Frames are turned upright by the stream's
display matrix (or its legacy `rotate` tag) before they are resized and cropped. Clips are located by seeking
to the keyframe before each clip and decoding forward, so a long video costs the frames around its clips
rather than the whole file. Every way a file can fail to give a clip raises `VideoReadError` with a short
machine-readable reason and a sentence a person understands.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from itertools import chain
from typing import Generic, TypeVar

import av
import numpy as np

from mobilei2v_pipeline import storage
from mobilei2v_pipeline.storage import VideoLocation

# Demuxers that open a single still picture: such a file has a "video" stream but is not a video.
_STILL_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif_pipe"}


# Why a file gives no clip: the `reason` of a VideoReadError.
READ_ERROR_REASONS = (
    "unreadable_file",
    "empty_file",
    "unreadable_container",
    "no_video_stream",
    "still_image",
    "unsupported_codec",
    "too_small",
    "too_few_frames",
    "decode_error",
)

F = TypeVar("F")


class VideoReadError(Exception):
    """A file that cannot give a clip. `reason` is a short category, str(self) explains it."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file's first video stream (sizes as coded, before any rotation)."""

    container: str
    codec: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    size_bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClipSpec:
    """Which frames make a clip and the size they are delivered at."""

    frames_per_clip: int
    frame_interval: int
    clips_per_video: int
    height: int
    width: int

    def __post_init__(self):
        if self.frames_per_clip < 2 or self.frame_interval < 1:
            raise ValueError(f"a clip needs at least 2 frames and an interval of at least 1, got {self}")

    @property
    def span(self) -> int:
        """Source frames covered by one clip, first to last inclusive."""
        return (self.frames_per_clip - 1) * self.frame_interval + 1


@dataclass(frozen=True)
class Clip:
    """One decoded clip and how its frames sampled the source."""

    start_frame: int  # the clip's start in source frames at the stream's average rate
    start_time_s: float
    frames: np.ndarray  # uint8 (frames, height, width, 3), upright
    rotation: int  # degrees the source frames were turned clockwise: 0, 90, 180 or 270
    effective_fps: float  # source frames per second over the clip's span
    max_gap_ms: float  # the longest time between two consecutive source frames over the span


@dataclass(frozen=True)
class Sample(Generic[F]):
    """The frames nearest to a clip's target times (fewer when the clip could not be completed), and the
    times of the source frames around them."""

    frames: list[F]
    times: list[float]  # from the last frame at or before the first target to the first at or after the last
    complete: bool


def probe_video(path: VideoLocation, min_short_side: int = 64) -> VideoInfo:
    """Describe a file's first video stream (a local path or a URL, see `storage`), or raise
    `VideoReadError` saying why it is unusable."""
    try:
        size = storage.size(path)
    except OSError as exc:
        raise VideoReadError("unreadable_file", f"cannot read the file ({exc})") from exc
    if size == 0:
        raise VideoReadError("empty_file", "empty file (0 bytes)")
    try:
        with storage.readable(path) as source, av.open(source) as container:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams}) or ["none"]
                raise VideoReadError("no_video_stream", f"no video stream (streams: {', '.join(kinds)})")
            if container.format.name in _STILL_IMAGE_FORMATS:
                raise VideoReadError("still_image", f"a still image ({container.format.name}), not a video")
            stream = container.streams.video[0]
            codec_ctx = stream.codec_context  # None when FFmpeg has no decoder for the stream's codec
            if codec_ctx is None:
                raise VideoReadError(
                    "unsupported_codec",
                    f"unsupported codec: no decoder for the video stream of {container.format.name}",
                )
            fps = _stream_fps(stream)
            # Matroska/WebM (and GIF) state no frame count, and their container duration covers every
            # stream (audio too): count the video packets instead, which reads but does not decode.
            num_frames = stream.frames or _count_packets(container, stream)
            info = VideoInfo(
                container=container.format.name,
                codec=codec_ctx.name,
                width=codec_ctx.width,
                height=codec_ctx.height,
                fps=fps,
                num_frames=num_frames,
                duration_s=num_frames / fps,
                size_bytes=size,
            )
    except VideoReadError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoReadError("unreadable_container", f"not a readable video container ({exc})") from exc
    except OSError as exc:  # the storage failed under the reader (a remote file gone, a lost connection)
        raise VideoReadError("unreadable_file", f"cannot read the file ({exc})") from exc
    if min(info.width, info.height) < min_short_side:
        raise VideoReadError(
            "too_small",
            f"frames are {info.width}x{info.height}, short side below the minimum of {min_short_side} px",
        )
    return info


def clip_starts(num_frames: int, spec: ClipSpec) -> list[int]:
    """First source frame of each clip, spread evenly over the video; empty when no clip fits."""
    last_start = num_frames - spec.span
    if last_start < 0:
        return []
    count = min(spec.clips_per_video, last_start // spec.span + 1)
    if count == 1:
        return [last_start // 2]
    return [round(i * last_start / (count - 1)) for i in range(count)]


def clip_target_times(start: int, fps: float, spec: ClipSpec) -> list[float]:
    """When each frame of the clip starting at source frame `start` should be, in seconds from the first."""
    return [(start + k * spec.frame_interval) / fps for k in range(spec.frames_per_clip)]


def upright_rotation(display_rotation: float, rotate_tag: float) -> int:
    """Degrees to turn coded frames clockwise so they show upright, as a multiple of 90.

    `display_rotation` is FFmpeg's angle of the display matrix (counter-clockwise, PyAV's `frame.rotation`);
    without a matrix, the legacy `rotate` tag (clockwise) of older muxers and Matroska files decides.
    """
    clockwise = -display_rotation if display_rotation else rotate_tag
    return round(clockwise / 90) % 4 * 90


def sample_nearest(
    frames: Iterator[tuple[float, F]], targets: Sequence[float], period: float
) -> tuple[Sample[F], list[tuple[float, F]]]:
    """For each target time, the frame nearest to it, from (time, frame) pairs in time order; and the last
    two pairs read, which the next clip's first target may fall between.

    A target may take a frame after it without one before it only within half a `period` (the source's
    frame period): a first frame later than that means a seek landed past the clip. The stream's last frame
    serves targets up to a period after it, as long as it is shown.
    """
    picked: list[F] = []
    times: list[float] = []
    prev: tuple[float, F] | None = None
    for time, frame in frames:
        if prev is None and time > targets[0] + period / 2:
            return Sample([], [], complete=False), [(time, frame)]
        if time <= targets[0]:
            times = []  # only the last frame at or before the first target bounds the span
        times.append(time)
        while len(picked) < len(targets) and time >= targets[len(picked)]:
            target = targets[len(picked)]
            closer_before = prev is not None and target - prev[0] <= time - target
            picked.append(prev[1] if closer_before else frame)
        if len(picked) == len(targets):
            return Sample(picked, times, complete=True), [p for p in (prev, (time, frame)) if p is not None]
        prev = (time, frame)
    if prev is None:
        return Sample([], [], complete=False), []
    if targets[-1] - prev[0] > period:
        return Sample(picked, times, complete=False), [prev]
    return Sample(picked + [prev[1]] * (len(targets) - len(picked)), times, complete=True), [prev]


def read_clips(
    path: VideoLocation, info: VideoInfo, spec: ClipSpec, seek: bool = True, threads: int = 0
) -> list[Clip]:
    """Decode the clips of one video, upright, resized and centre-cropped to the spec. Clips the file ends
    before are left out.

    With `seek=False` the file is decoded in one pass from its first frame: the baseline the benchmark
    compares with, and the automatic fallback when seeking did not give every clip whole. `threads` is the
    decoder's thread count (0: FFmpeg's choice, one per core); the frames are the same whatever it is.
    """
    starts = clip_starts(info.num_frames, spec)
    if not starts:
        raise VideoReadError(
            "too_few_frames",
            f"{info.num_frames} frames, fewer than the {spec.span} one clip needs "
            f"({spec.frames_per_clip} frames every {spec.frame_interval})",
        )
    try:
        clips = _decode_clips(path, info.fps, starts, spec, seek, threads)
        if seek and any(isinstance(clip, int) for clip in clips):
            # Some containers (MPEG-TS/PS) seek past the keyframe before the target; one pass is always right.
            clips = _decode_clips(path, info.fps, starts, spec, False, threads)
    except av.FFmpegError as exc:
        raise VideoReadError("decode_error", f"decoding failed ({exc})") from exc
    complete = [clip for clip in clips if isinstance(clip, Clip)]
    if not complete:
        raise VideoReadError(
            "too_few_frames",
            f"no complete clip could be decoded ({max(clips)} of {spec.frames_per_clip} frames)",
        )
    return complete


def _decode_clips(
    path, fps: float, starts: list[int], spec: ClipSpec, seek: bool, threads: int
) -> list[Clip | int]:
    """Decode forward through the clips in order, converting only their frames; an incomplete clip is the
    count of its frames that were found.

    With `seek`, jump ahead to a clip only when a keyframe lies between the last decoded frame and the clip's
    start: otherwise the decoder would go back to a keyframe it already passed, and decoding on is cheaper.
    """
    clips: list[Clip | int] = []
    with storage.readable(path) as source, av.open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        rotate_tag = _rotate_tag(stream)
        keyframes = _keyframe_times(stream) if seek else []
        frames, read = None, []
        for start in starts:
            targets = clip_target_times(start, fps, spec)
            reached = read[-1][0] if read else -math.inf
            if seek and (keyframes is None or any(reached < k <= targets[0] for k in keyframes)):
                _seek_to_time(container, stream, targets[0])
                frames = None
            # Decoding on, the last frames read for the clip before may be this clip's nearest.
            frames = _timed_frames(container, stream, fps) if frames is None else chain(read, frames)
            sample, read = sample_nearest(frames, targets, 1 / fps)
            clips.append(
                _clip(start, sample, spec, rotate_tag, fps) if sample.complete else len(sample.frames)
            )
    return clips


def _clip(start: int, sample: Sample, spec: ClipSpec, rotate_tag: float, fps: float) -> Clip:
    """Convert a sample's frames (each once, though nearest-frame sampling may repeat one) into a clip."""
    rotation = upright_rotation(sample.frames[0].rotation, rotate_tag)
    converted: dict[int, np.ndarray] = {}
    for frame in sample.frames:
        if id(frame) not in converted:
            converted[id(frame)] = cover_and_crop(frame, spec.height, spec.width, rotation)
    gaps = np.diff(sample.times)
    return Clip(
        start_frame=start,
        start_time_s=start / fps,
        frames=np.stack([converted[id(frame)] for frame in sample.frames]),
        rotation=rotation,
        effective_fps=float(len(gaps) / gaps.sum()) if gaps.sum() > 0 else fps,
        max_gap_ms=float(gaps.max() * 1000) if len(gaps) else 0.0,
    )


def _rotate_tag(stream) -> float:
    """The legacy `rotate` tag (clockwise degrees) of older muxers and of Matroska; 0 if absent or junk."""
    try:
        return float({key.lower(): value for key, value in stream.metadata.items()}.get("rotate", 0))
    except ValueError:
        return 0.0


def _timed_frames(container, stream, fps: float) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decoded frames from the current position, with their time in seconds from the stream's start."""
    start_pts = stream.start_time or 0
    for counter, frame in enumerate(container.decode(stream)):
        if frame.pts is None:  # no timestamps: only a pass from the first frame has them right
            yield counter / fps, frame
        else:
            yield float((frame.pts - start_pts) * stream.time_base), frame


def _keyframe_times(stream) -> list[float] | None:
    """Approximate times of the keyframes from the container's index; None when it has none."""
    start_pts = stream.start_time or 0
    keys = [
        float((entry.timestamp - start_pts) * stream.time_base)
        for entry in stream.index_entries
        if entry.is_keyframe
    ]
    return keys or None


def _seek_to_time(container, stream, seconds: float) -> None:
    start_pts = stream.start_time or 0
    target = start_pts + int(seconds / stream.time_base)
    container.seek(target, stream=stream, backward=True, any_frame=False)


def cover_and_crop(frame: av.VideoFrame, height: int, width: int, rotation: int = 0) -> np.ndarray:
    """Turn the frame upright, scale it (area averaging) to cover height x width, then crop the centre: the
    target aspect without bars. The scaling is done in the coded orientation and the small result rotated.
    Clips are made so, and so is an image given to `mobilei2v generate`: inference sees what training saw."""
    turned = rotation in (90, 270)
    upright_h, upright_w = (frame.width, frame.height) if turned else (frame.height, frame.width)
    scale = max(height / upright_h, width / upright_w)
    new_h, new_w = max(height, math.ceil(upright_h * scale)), max(width, math.ceil(upright_w * scale))
    coded_w, coded_h = (new_h, new_w) if turned else (new_w, new_h)
    rgb = frame.reformat(width=coded_w, height=coded_h, format="rgb24", interpolation="AREA").to_ndarray()
    rgb = np.rot90(rgb, k=-rotation // 90)  # np.rot90 turns counter-clockwise for positive k
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])


def _count_packets(container, stream) -> int:
    """Frame count of a container that does not state it: one packet per frame, read without decoding."""
    return sum(1 for packet in container.demux(stream) if packet.size)


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    if not rate or float(rate) <= 0:
        raise VideoReadError("unreadable_container", "the video stream has no frame rate")
    return float(Fraction(rate))
