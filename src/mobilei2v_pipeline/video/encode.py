"""Encode uint8 frame arrays (frames, height, width, 3) as MP4 (H.264) or GIF bytes."""

from __future__ import annotations

import io
from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np
from PIL import Image


def encode_mp4(
    frames: Iterable[np.ndarray], fps: float, crf: int = 18, preset: str = "medium", keyint: int = 250
) -> bytes:
    """H.264 in MP4, yuv420p, from any iterable of frames (so long videos stream through), with at most
    `keyint` frames between keyframes (x264's default is 250; phones and the web use 1-2 s).

    Single-threaded x264 without macroblock-tree rate control (which was seen to vary between runs), so the
    same frames always give the same bytes.
    """
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = None
        for image in frames:
            image = _even_sized(image)
            if stream is None:
                stream = container.add_stream("libx264", rate=_rate(fps))
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {
                    "crf": str(crf),
                    "preset": preset,
                    "threads": "1",
                    "x264-params": f"mbtree=0:keyint={keyint}",
                }
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        if stream is None:
            raise ValueError("cannot encode a video of zero frames")
        container.mux(stream.encode())
    return buffer.getvalue()


def encode_gif(frames: np.ndarray, fps: float) -> bytes:
    """Looping GIF; Pillow's palette quantisation looks better than ffmpeg's default for previews."""
    images = [Image.fromarray(image) for image in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
    )
    return buffer.getvalue()


def encode_video(frames: np.ndarray, fps: float, suffix: str) -> bytes:
    """Encode by file suffix: '.gif' or '.mp4'."""
    encoders = {".gif": encode_gif, ".mp4": encode_mp4}
    if suffix not in encoders:
        raise ValueError(f"cannot encode video as '{suffix}': use one of {sorted(encoders)}")
    return encoders[suffix](np.asarray(frames, dtype=np.uint8), fps)


def _even_sized(image: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: drop a trailing row or column when odd."""
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return np.ascontiguousarray(image[:height, :width])


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)
