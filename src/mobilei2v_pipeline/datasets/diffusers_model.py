"""A diffusers model in its own folder format (config.json + safetensors), so the same folder can be given as
`pretrained_path` or opened with diffusers directly. Replaced whole on save."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset
from kedro.utils import load_obj


class DiffusersModelDataset(AbstractDataset[Any, Any]):
    def __init__(self, path: str, model_class: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self._model_class = model_class
        self.metadata = metadata

    def load(self) -> Any:
        return load_obj(self._model_class).from_pretrained(self._path, local_files_only=True)

    def save(self, model: Any) -> None:
        partial = self._path.with_name(f".{self._path.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        shutil.rmtree(self._path, ignore_errors=True)
        partial.rename(self._path)

    def _exists(self) -> bool:
        return (self._path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "model_class": self._model_class}
