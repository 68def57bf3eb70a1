"""A NumPy array in one .npy file, written atomically and optionally loaded memory-mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset

from mobilei2v_pipeline.atomic_write import atomic_write


class NumpyArrayDataset(AbstractDataset[np.ndarray, np.ndarray]):
    def __init__(self, filepath: str, mmap: bool = False, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self._mmap = mmap
        self.metadata = metadata

    def load(self) -> np.ndarray:
        return np.load(self._filepath, mmap_mode="r" if self._mmap else None, allow_pickle=False)

    def save(self, data: np.ndarray) -> None:
        atomic_write(self._filepath, lambda handle: np.save(handle, np.asarray(data), allow_pickle=False))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "mmap": self._mmap}
