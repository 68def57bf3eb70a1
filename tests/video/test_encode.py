"""encode_mp4, encode_gif and encode_video: what comes back when the bytes are decoded again."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from mobilei2v_pipeline.video.encode import encode_gif, encode_mp4, encode_video


def smooth_frames(count: int, height: int = 96, width: int = 160) -> np.ndarray:
    """Slow colour waves drifting over time: content a codec reproduces closely."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack(
        [
            np.stack(
                [
                    127 + 100 * np.sin(x / 17 + 0.3 * t),
                    127 + 100 * np.cos(y / 13 - 0.2 * t),
                    127 + 80 * np.sin((x + y) / 23 + 0.1 * t),
                ],
                axis=-1,
            ).astype(np.uint8)
            for t in range(count)
        ]
    )


def decode_mp4(data: bytes) -> tuple[np.ndarray, av.VideoStream]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        return frames, stream


def gif_frames(data: bytes) -> tuple[Image.Image, list[np.ndarray], list[int]]:
    image = Image.open(io.BytesIO(data))
    frames, durations = [], []
    for i in range(image.n_frames):
        image.seek(i)
        frames.append(np.asarray(image.convert("RGB")))
        durations.append(image.info["duration"])
    image.seek(0)
    return image, frames, durations


def test_mp4_round_trip_keeps_every_frame_and_its_content():
    frames = smooth_frames(12)
    data = encode_mp4(frames, fps=12)
    decoded, stream = decode_mp4(data)
    assert stream.codec_context.name == "h264"
    assert stream.codec_context.pix_fmt == "yuv420p"
    assert stream.average_rate == 12
    assert decoded.shape == frames.shape
    error = np.abs(decoded.astype(np.int16) - frames)
    assert error.mean() < 3.0
    assert np.percentile(error, 99) < 12


def test_mp4_frames_stay_in_order():
    frames = smooth_frames(12)
    decoded, _ = decode_mp4(encode_mp4(frames, fps=12))
    for i, frame in enumerate(decoded):
        distances = [np.abs(frame.astype(np.int16) - original).mean() for original in frames]
        assert int(np.argmin(distances)) == i


def test_odd_sizes_are_cropped_to_even_not_scaled():
    even = smooth_frames(6, height=96, width=160)
    odd = np.zeros((6, 97, 161, 3), dtype=np.uint8)
    odd[:, :96, :160] = even
    odd[:, 96, :] = odd[:, :, 160] = (255, 0, 255)  # a magenta last row and column that must be dropped
    decoded, _ = decode_mp4(encode_mp4(odd, fps=12))
    assert decoded.shape == (6, 96, 160, 3)
    assert np.abs(decoded.astype(np.int16) - even).mean() < 3.0


def test_an_ntsc_frame_rate_is_kept_exactly():
    _, stream = decode_mp4(encode_mp4(smooth_frames(4), fps=30000 / 1001))
    assert stream.average_rate == Fraction(30000, 1001)


def test_mp4_bytes_are_deterministic():
    frames = smooth_frames(10)
    first = encode_mp4(frames, fps=12)
    assert encode_mp4(frames, fps=12) == first
    assert encode_mp4(iter(list(frames)), fps=12) == first  # a generator streams to the same bytes
    assert encode_mp4(frames, fps=12, crf=35) != first  # crf is used (so equality above means something)


def test_mp4_of_no_frames_raises():
    with pytest.raises(ValueError, match="zero frames"):
        encode_mp4([], fps=12)


def test_gif_loops_forever_with_every_frame():
    frames = smooth_frames(7)
    data = encode_gif(frames, fps=10)
    assert data[:6] == b"GIF89a"
    image, decoded, durations = gif_frames(data)
    assert image.is_animated
    assert image.n_frames == 7
    assert image.info["loop"] == 0
    assert image.size == (160, 96)
    assert durations == [100] * 7
    assert np.abs(np.stack(decoded).astype(np.int16) - frames).mean() < 15  # palette quantised, still close


def test_gif_frame_duration_follows_fps_to_the_centisecond():
    _, _, durations = gif_frames(encode_gif(smooth_frames(3), fps=12))
    assert all(abs(d - 1000 / 12) <= 10 for d in durations)  # GIF stores hundredths of a second


def test_encode_video_picks_the_encoder_by_suffix():
    frames = [frame for frame in smooth_frames(5)]  # a list works, not only an array
    mp4 = encode_video(frames, fps=12, suffix=".mp4")
    assert mp4 == encode_mp4(np.stack(frames), fps=12)
    assert decode_mp4(mp4)[0].shape == (5, 96, 160, 3)
    gif = encode_video(frames, fps=12, suffix=".gif")
    assert gif == encode_gif(np.stack(frames), fps=12)
    assert Image.open(io.BytesIO(gif)).n_frames == 5


@pytest.mark.parametrize("suffix", [".webm", ".avi", "mp4", ""])
def test_encode_video_rejects_an_unknown_suffix(suffix):
    with pytest.raises(ValueError, match=r"cannot encode video as .*\.gif.*\.mp4"):
        encode_video(smooth_frames(2), fps=12, suffix=suffix)
