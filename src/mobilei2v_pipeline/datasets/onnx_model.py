"""An ONNX model file (one .onnx, weights inside), written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
from kedro.io import AbstractDataset

from mobilei2v_pipeline.atomic_write import atomic_write_bytes


class OnnxModelDataset(AbstractDataset[onnx.ModelProto, onnx.ModelProto]):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> onnx.ModelProto:
        return onnx.load(self._filepath)

    def save(self, data: onnx.ModelProto) -> None:
        atomic_write_bytes(self._filepath, data.SerializeToString())

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
