"""Files that cannot give a clip, one per way a raw folder goes wrong, made on the spot (none on disk)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from PIL import Image

from mobilei2v_pipeline.video.encode import encode_mp4


def _frames(count: int, height: int = 96, width: int = 160) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width + count, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, i : i + width]) for i in range(count)]


def _audio_only() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(20):
            samples = np.zeros((1, 1024), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_frames(1)[0]).save(buffer, format="PNG")
    return buffer.getvalue()


# Expected quarantine reason for each file.
EXPECTED_REASONS = {
    "empty.mp4": "empty_file",
    "truncated.mp4": "unreadable_container",
    "corrupt_header.mp4": "unreadable_container",
    "random_bytes.mkv": "unreadable_container",
    "notes.mp4": "unreadable_container",
    "picture.mp4": "still_image",
    "audio_only.m4a": "no_video_stream",
    "too_short.mp4": "too_few_frames",
    "too_small.mp4": "too_small",
    "unknown_codec.mp4": "unsupported_codec",
}


def write_broken_videos(folder: Path) -> dict[str, str]:
    """Write every broken file into `folder`; return {file name: expected quarantine reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = encode_mp4(_frames(30), fps=12)
    rng = np.random.default_rng(1)
    files = {
        "empty.mp4": b"",
        "truncated.mp4": good[: len(good) * 2 // 5],
        "corrupt_header.mp4": rng.bytes(64) + good[64:],
        "random_bytes.mkv": rng.bytes(50_000),
        "notes.mp4": b"these are meeting notes, not a video\n" * 50,
        "picture.mp4": _png(),
        "audio_only.m4a": _audio_only(),
        "too_short.mp4": encode_mp4(_frames(4), fps=12),
        "too_small.mp4": encode_mp4(_frames(30, height=32, width=48), fps=12),
        # The H.264 sample entry renamed to a fourcc no decoder knows.
        "unknown_codec.mp4": good.replace(b"avc1", b"zzz9").replace(b"avcC", b"zzzC"),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return EXPECTED_REASONS
