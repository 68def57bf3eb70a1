"""A dict of tensors and plain values (weights with their config) in one torch file, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset

from mobilei2v_pipeline.atomic_write import atomic_write


class TorchFileDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        return torch.load(self._filepath, map_location="cpu", weights_only=True)

    def save(self, data: dict[str, Any]) -> None:
        atomic_write(self._filepath, lambda handle: torch.save(data, handle))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
