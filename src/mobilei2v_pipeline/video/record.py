"""What curation keeps of one source video: a record written as soon as the video is done, so curation holds
only the videos in flight, never the whole folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class VideoRecord:
    """One source video after curation's per-video work.

    `rows` has one dict per clip cut from the video: how it sampled the source, the source's metadata, the
    clip's scores and `reason`, why the per-clip filters rejected it ("" when kept). `frames` holds the
    frames of the kept clips and `thumbnails` the middle frame of every clip (for the contact sheet), both by
    clip id; `hashes` the perceptual hash of each frame of every clip (for near-duplicate sources). A file
    that gave no clip has no rows and its `quarantine` row says why. A record loaded from disk reads its
    arrays lazily.
    """

    video_id: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    frames: Mapping[str, np.ndarray] = field(default_factory=dict)
    thumbnails: Mapping[str, np.ndarray] = field(default_factory=dict)
    hashes: dict[str, list[int]] = field(default_factory=dict)
    quarantine: dict[str, Any] | None = None
    # A record a worker process wrote to a temporary file of its own: saving it moves that file into place
    # instead of sending its frames through this process.
    handoff_file: str | None = None

    def header(self) -> dict[str, Any]:
        """Everything but the arrays, as JSON-able values."""
        return {
            "video_id": self.video_id,
            "rows": self.rows,
            "hashes": self.hashes,
            "quarantine": self.quarantine,
        }
