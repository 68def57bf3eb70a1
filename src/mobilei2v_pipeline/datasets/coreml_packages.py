"""A folder of Core ML packages (`<name>.mlpackage`, each a folder itself, which a PartitionedDataset cannot
list): saved from coremltools models, each written beside its place and renamed in, loaded as the packages'
paths (Core ML cannot load a model off Apple systems; readers take what they need from the path)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class CoreMLPackagesDataset(AbstractDataset[dict[str, Any], dict[str, Path]]):
    """{name: coremltools MLModel} saved as `<path>/<name>.mlpackage`; packages of an earlier save that are
    not in this one are removed, and the folder exists after every save (a DVC out must)."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, Path]:
        from mobilei2v_pipeline.coreml import PACKAGE

        found = sorted(self._path.glob(f"*{PACKAGE}")) if self._path.is_dir() else []
        return {package.name.removesuffix(PACKAGE): package for package in found}

    def save(self, data: dict[str, Any]) -> None:
        from mobilei2v_pipeline import coreml  # coremltools takes seconds to import

        self._path.mkdir(parents=True, exist_ok=True)
        for name in set(self.load()) - set(data):
            shutil.rmtree(self._path / f"{name}{coreml.PACKAGE}")
        for name, model in data.items():
            coreml.save(model, self._path, name)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
