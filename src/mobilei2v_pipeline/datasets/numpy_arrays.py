"""Named arrays, nested by name (e.g. {graph: {input name: array}}), in one .npz file written atomically.

What the stages hand each other as sets of arrays (the export's samples and torch outputs, the captured
denoiser inputs, ONNX Runtime's outputs): numpy reads the file anywhere, and nothing in it is unpickled. A
nested key is stored as its path ("denoiser/latents")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset

from mobilei2v_pipeline.atomic_write import atomic_write

Arrays = dict[str, Any]  # name -> np.ndarray, or name -> Arrays


def _flat(arrays: Arrays, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for name, value in arrays.items():
        if "/" in name:
            raise ValueError(f"array name {name!r} holds a '/', which nests names in the file")
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{name}/")
        else:
            flat[f"{prefix}{name}"] = np.asarray(value)
    return flat


class NumpyArraysDataset(AbstractDataset[Arrays, Arrays]):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> Arrays:
        nested: Arrays = {}
        with np.load(self._filepath, allow_pickle=False) as stored:
            for key in stored.files:
                *parents, name = key.split("/")
                level = nested
                for parent in parents:
                    level = level.setdefault(parent, {})
                level[name] = stored[key]
        return nested

    def save(self, data: Arrays) -> None:
        arrays = _flat(data)
        atomic_write(self._filepath, lambda handle: np.savez(handle, **arrays))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
