"""Probe video files and decode fixed-length clips with PyAV, reading only the frames a clip needs.

Clips are located by seeking to the keyframe before each clip and decoding forward, so a long video costs
the frames around its clips rather than the whole file. Every way a file can fail to give a clip raises
`VideoReadError` with a short machine-readable reason and a sentence a person understands.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

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


class VideoReadError(Exception):
    """A file that cannot give a clip. `reason` is a short category, str(self) explains it."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file's first video stream."""

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


def probe_video(path: str | Path, min_short_side: int = 64) -> VideoInfo:
    """Describe a file's first video stream, or raise `VideoReadError` saying why it is unusable."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise VideoReadError("unreadable_file", f"cannot read the file ({exc})") from exc
    if size == 0:
        raise VideoReadError("empty_file", "empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
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


def read_clips(
    path: str | Path, info: VideoInfo, spec: ClipSpec, seek: bool = True
) -> list[tuple[int, np.ndarray]]:
    """Decode the clips of one video: (first source frame, uint8 array (frames, height, width, 3)) each,
    resized and centre-cropped to the spec. Clips the file ends before are left out.

    With `seek=False` the file is decoded in one pass from its first frame: the baseline the benchmark
    compares with, and the automatic fallback when seeking did not give every clip whole.
    """
    starts = clip_starts(info.num_frames, spec)
    if not starts:
        raise VideoReadError(
            "too_few_frames",
            f"{info.num_frames} frames, fewer than the {spec.span} one clip needs "
            f"({spec.frames_per_clip} frames every {spec.frame_interval})",
        )
    try:
        clips = _decode_clips(path, info.fps, starts, spec, seek)
        if seek and any(len(clip) < spec.frames_per_clip for clip in clips):
            # Some containers (MPEG-TS/PS) seek past the keyframe before the target; one pass is always right.
            clips = _decode_clips(path, info.fps, starts, spec, seek=False)
    except av.FFmpegError as exc:
        raise VideoReadError("decode_error", f"decoding failed ({exc})") from exc
    complete = [
        (s, np.stack(c)) for s, c in zip(starts, clips, strict=True) if len(c) == spec.frames_per_clip
    ]
    if not complete:
        raise VideoReadError(
            "too_few_frames",
            f"no complete clip could be decoded "
            f"({max(len(c) for c in clips)} of {spec.frames_per_clip} frames)",
        )
    return complete


def _decode_clips(path, fps: float, starts: list[int], spec: ClipSpec, seek: bool) -> list[list[np.ndarray]]:
    """Decode forward through the clips in order, converting only their frames.

    With `seek`, jump ahead to a clip only when a keyframe lies between the last decoded frame and the clip's
    start: otherwise the decoder would go back to a keyframe it already passed, and decoding on is cheaper.
    """
    wanted = {
        s + k * spec.frame_interval: i for i, s in enumerate(starts) for k in range(spec.frames_per_clip)
    }
    # Frames by source index: a frame decoded again after a backward seek is kept once.
    clips: list[dict[int, np.ndarray]] = [{} for _ in starts]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        keyframes = _keyframe_indices(stream, fps) if seek else []
        frames, position = None, -1
        for start in starts:
            if seek and (keyframes is None or any(position < k <= start for k in keyframes)):
                _seek_to_frame(container, stream, start, fps)
                frames = None
            if frames is None:
                frames = _indexed_frames(container, stream, fps)
            last = start + (spec.frames_per_clip - 1) * spec.frame_interval
            for position, frame in frames:  # the position outlives the loop: the next clip reads it
                clip = clips[wanted[position]] if position in wanted else None
                if clip is not None and position not in clip:
                    clip[position] = _resize_and_crop(frame, spec.height, spec.width)
                if position >= last:
                    break
    return [[clip[index] for index in sorted(clip)] for clip in clips]


def _indexed_frames(container, stream, fps: float) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded frames from the current position, with their source frame index."""
    for counter, frame in enumerate(container.decode(stream)):
        yield (_frame_index(frame, stream, fps) if frame.pts is not None else counter), frame


def _keyframe_indices(stream, fps: float) -> list[int] | None:
    """Approximate frame indices of the keyframes from the container's index; None when it has none."""
    start_pts = stream.start_time or 0
    keys = [
        round(float((entry.timestamp - start_pts) * stream.time_base) * fps)
        for entry in stream.index_entries
        if entry.is_keyframe
    ]
    return keys or None


def _seek_to_frame(container, stream, frame_index: int, fps: float) -> None:
    start_pts = stream.start_time or 0
    target = start_pts + int(frame_index / fps / stream.time_base)
    container.seek(target, stream=stream, backward=True, any_frame=False)


def _frame_index(frame, stream, fps: float) -> int:
    start_pts = stream.start_time or 0
    return round(float((frame.pts - start_pts) * stream.time_base) * fps)


def _resize_and_crop(frame: av.VideoFrame, height: int, width: int) -> np.ndarray:
    """Scale so the frame covers height x width, then crop the centre: the target aspect without bars."""
    scale = max(height / frame.height, width / frame.width)
    new_h, new_w = max(height, math.ceil(frame.height * scale)), max(width, math.ceil(frame.width * scale))
    rgb = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation="AREA").to_ndarray()
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
