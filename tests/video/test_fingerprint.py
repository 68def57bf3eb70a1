"""Perceptual frame hashes and near-duplicate groups."""

from __future__ import annotations

import cv2
import numpy as np

from mobilei2v_pipeline.video.fingerprint import frame_hashes, near_duplicate_groups


def _scene(seed: int, count: int = 4) -> np.ndarray:
    """Frames of a random scene of soft blobs panning right."""
    rng = np.random.default_rng(seed)
    blobs = rng.integers(0, 256, (8, 20, 3), dtype=np.uint8)
    base = cv2.resize(blobs, (160, 64), interpolation=cv2.INTER_CUBIC)
    return np.stack([base[:, 4 * i : 4 * i + 112] for i in range(count)])


def _bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a ^ b)


def test_frame_hashes_survive_recompression_and_rescaling_but_tell_scenes_apart():
    frames = _scene(0)
    hashes = frame_hashes(frames)
    assert hashes.dtype == np.uint64 and hashes.shape == (4,)
    _, jpeg = cv2.imencode(".jpg", frames[0], [cv2.IMWRITE_JPEG_QUALITY, 40])
    recompressed = cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)
    smaller = cv2.resize(frames[0], (56, 32), interpolation=cv2.INTER_AREA)
    assert _bits(frame_hashes(recompressed[None])[0], hashes[0]) <= 4
    assert _bits(frame_hashes(smaller[None])[0], hashes[0]) <= 4
    assert (_bits(frame_hashes(_scene(1)), hashes) > 16).all()


def test_near_duplicate_groups_link_through_a_shared_frame_and_are_named_by_the_first_id():
    a, b, c = (frame_hashes(_scene(seed)) for seed in range(3))
    hashes = {
        "user/b_copy.mp4": b[[3]],  # one frame of b: a trimmed copy
        "user/a.mp4": a,
        "user/b.mp4": b,
        "user/c.mp4": c,
        "user/c_then_a.mp4": np.concatenate([c[:2], a[2:]]),  # links c and a: one group of three
    }
    assert near_duplicate_groups(hashes, max_distance=6) == {
        "user/a.mp4": "user/a.mp4",
        "user/b.mp4": "user/b.mp4",
        "user/b_copy.mp4": "user/b.mp4",
        "user/c.mp4": "user/a.mp4",
        "user/c_then_a.mp4": "user/a.mp4",
    }
    alone = near_duplicate_groups(hashes, max_distance=-1)
    assert alone == {video: video for video in hashes}
