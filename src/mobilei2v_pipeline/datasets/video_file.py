"""A video file saved from, and loaded as, a uint8 array (frames, height, width, 3): MP4 or GIF by suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from kedro.io import AbstractDataset

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.video.encode import encode_video


class VideoFileDataset(AbstractDataset[np.ndarray, np.ndarray]):
    def __init__(self, filepath: str, fps: float = 8.0, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self._fps = fps
        self.metadata = metadata

    def load(self) -> np.ndarray:
        with av.open(str(self._filepath)) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])

    def save(self, data: np.ndarray) -> None:
        atomic_write_bytes(self._filepath, encode_video(data, self._fps, self._filepath.suffix.lower()))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "fps": self._fps}
