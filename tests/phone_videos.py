"""Files like a phone's footage, made on the spot (none on disk): portrait video stored as landscape frames
with a display matrix, variable frame rates, dropped frames, and the same footage recompressed and trimmed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Gaps between frames in ms, cycled: 90 frames over about 5 s, from 16 to 250 ms, as a phone in dim light.
IRREGULAR_GAPS_MS = [16, 33, 50, 250, 16, 33, 33, 17]


def upright_frames(count: int, height: int = 160, width: int = 96, seed: int = 0) -> list[np.ndarray]:
    """Portrait frames that show which way is up: red grows downwards, blue rightwards; in green (most of
    the luma, so most of a perceptual hash) a blocky texture of the seed pans a little each frame, so every
    frame differs from the others and every seed is other footage."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, (width + 2 * count) // 8 + 1), dtype=np.uint8)
    texture = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
    return [
        np.stack(
            [255 * y // height, texture[:height, 2 * i : 2 * i + width], 255 * x // width], axis=-1
        ).astype(np.uint8)
        for i in range(count)
    ]


def write_mp4(
    path: Path,
    frames: list[np.ndarray],
    pts: list[int] | None = None,
    fps: float = 24,
    display_rotation: float = 0,
    metadata: dict[str, str] | None = None,
    crf: int = 18,
    time_base: Fraction = Fraction(1, 1000),
) -> Path:
    """H.264 (MP4, or Matroska by the suffix) of the frames at `fps`, or at the given times (`pts` in units
    of `time_base`, milliseconds by default).

    `display_rotation` is written as the stream's display matrix (counter-clockwise degrees, as FFmpeg and
    PyAV read it back); `metadata` as the stream's tags.
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        if pts is not None:
            stream.codec_context.time_base = time_base
        if display_rotation:
            stream.set_display_rotation(display_rotation)
        stream.metadata.update(metadata or {})
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def irregular_times_ms(count: int) -> list[int]:
    gaps = [IRREGULAR_GAPS_MS[i % len(IRREGULAR_GAPS_MS)] for i in range(count - 1)]
    return [0, *np.cumsum(gaps).tolist()]


def write_phone_videos(folder: Path) -> dict[str, Path]:
    """Four sources: a portrait clip stored sideways (display matrix -90), one upside down (180), a
    variable-frame-rate file with gaps of 16 to 250 ms and a 24 fps file with two frames in ten lost."""
    folder.mkdir(parents=True, exist_ok=True)
    dropped = [i for i in range(72) if i % 10 not in (3, 4)]
    landscape = upright_frames(72, height=96, width=160, seed=4)
    return {
        "portrait": write_mp4(
            folder / "portrait.mp4", [np.rot90(f) for f in upright_frames(48, seed=1)], display_rotation=-90
        ),
        "upside_down": write_mp4(
            folder / "upside_down.mp4",
            [np.rot90(f, 2) for f in upright_frames(48, seed=2)],
            display_rotation=180,
        ),
        "vfr": write_mp4(
            folder / "vfr.mp4",
            upright_frames(90, height=96, width=160, seed=3),
            irregular_times_ms(90),
            fps=18,
        ),
        "dropped": write_mp4(
            folder / "dropped.mp4", [landscape[i] for i in dropped], [round(i * 1000 / 24) for i in dropped]
        ),
    }


def write_copies(folder: Path, frames: list[np.ndarray], fps: float = 12) -> dict[str, Path]:
    """One piece of footage three times: pristine, recompressed hard, and trimmed at both ends."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "original": write_mp4(folder / "original.mp4", frames, fps=fps, crf=18),
        "recompressed": write_mp4(folder / "recompressed.mp4", frames, fps=fps, crf=38),
        "trimmed": write_mp4(folder / "trimmed.mp4", frames[7:-5], fps=fps, crf=28),
    }
