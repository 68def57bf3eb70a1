"""Perceptual hashes of frames, and groups of near-duplicate videos.

A difference hash (dHash) is 64 bits: whether each cell of a 9x8 grey thumbnail is brighter than its right
neighbour. Re-encoding, rescaling and small crops barely change it, unlike a hash of the bytes. Two videos are
near-duplicates when some frame of one lies within a few bits of some frame of the other: a trimmed copy
shares frames with its source, though not at the same positions.
"""

from __future__ import annotations

import cv2
import numpy as np


def frame_hashes(frames: np.ndarray) -> np.ndarray:
    """The dHash of each uint8 RGB frame of (frames, height, width, 3), as uint64."""
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    thumbs = np.stack([cv2.resize(g, (9, 8), interpolation=cv2.INTER_AREA) for g in grey]).astype(np.int16)
    bits = thumbs[:, :, 1:] > thumbs[:, :, :-1]
    return np.packbits(bits.reshape(len(frames), 64), axis=1).view(">u8").ravel().astype(np.uint64)


def near_duplicate_groups(hashes: dict[str, np.ndarray], max_distance: int) -> dict[str, str]:
    """Each video's group: the first, in sorted order, of the videos linked to it directly or through
    others, where two videos are linked when a frame hash of one is within `max_distance` bits of one of
    the other's. A video like no other is its own group."""
    ids = sorted(hashes)
    owner = np.concatenate([np.full(len(hashes[v]), i) for i, v in enumerate(ids)])
    every = np.concatenate([hashes[v] for v in ids])
    root = list(range(len(ids)))

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for i, video in enumerate(ids):
        later = owner > i
        distances = np.bitwise_count(hashes[video][:, None] ^ every[None, later])
        for j in np.unique(owner[later][(distances <= max_distance).any(axis=0)]):
            a, b = find(i), find(int(j))
            root[max(a, b)] = min(a, b)  # the smaller index roots the group, so it names it
    return {video: ids[find(i)] for i, video in enumerate(ids)}
