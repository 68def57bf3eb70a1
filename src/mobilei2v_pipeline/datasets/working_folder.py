"""A folder a node writes into itself, as it works, rather than handing data back to Kedro: a training stage's
checkpoints, Qualcomm AI Hub's downloads. Declared in the catalog beside the outputs, so a reader finds every
place a run writes there; the node takes it as an input and gets the folder's path. The node's writes in it
are atomic (a checkpoint is renamed into place once whole, a file is written beside and renamed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class WorkingFolderDataset(AbstractDataset[Any, Path]):
    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> Path:
        self._path.mkdir(parents=True, exist_ok=True)
        return self._path

    def save(self, data: Any) -> None:
        raise DatasetError(f"{self._path} is written by the node that takes it as an input, never saved to")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
