"""A dict of tensors and plain values (weights with their config) in one torch file, written atomically.

With `record` (the import path of a class with `to_dict()` and `from_dict()`), the file holds that record:
nodes hand it on as the typed object, the file stays tensors and plain values that torch loads with
`weights_only=True` (never an unpickled class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from kedro.io import AbstractDataset
from kedro.utils import load_obj

from mobilei2v_pipeline.atomic_write import atomic_write


class TorchFileDataset(AbstractDataset[Any, Any]):
    def __init__(self, filepath: str, record: str | None = None, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self._record = record  # imported when first loaded: building the catalog imports no stage
        self.metadata = metadata

    def load(self) -> Any:
        saved = torch.load(self._filepath, map_location="cpu", weights_only=True)
        return load_obj(self._record).from_dict(saved) if self._record else saved

    def save(self, data: Any) -> None:
        saved = data.to_dict() if self._record else data
        atomic_write(self._filepath, lambda handle: torch.save(saved, handle))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "record": self._record}
