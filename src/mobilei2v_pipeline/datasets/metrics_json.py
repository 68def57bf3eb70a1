"""A stage's figures: a flat JSON file of numbers (a DVC metrics file, or one of the measured figures in
data/08_reporting/measured/), also logged to the active MLflow run as metrics and as the file itself."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError

from mobilei2v_pipeline.atomic_write import atomic_write_bytes


class MetricsJSONDataset(AbstractDataset[dict[str, float], dict[str, float]]):
    """Saving checks that every value is a finite number, so `dvc metrics diff` can compare every key."""

    def __init__(self, filepath: str, artifact_path: str = "reports", metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self._artifact_path = artifact_path
        self.metadata = metadata

    def load(self) -> dict[str, float]:
        return json.loads(self._filepath.read_text())

    def save(self, data: dict[str, float]) -> None:
        bad = {k: v for k, v in data.items() if isinstance(v, bool) or not isinstance(v, int | float)}
        bad |= {k: v for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise DatasetError(f"metrics for {self._filepath} must be finite numbers; got {bad}")
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self._filepath, text.encode())
        if mlflow.active_run() is not None:
            mlflow.log_metrics({k: float(v) for k, v in data.items()})
            mlflow.log_artifact(str(self._filepath), artifact_path=self._artifact_path)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "artifact_path": self._artifact_path}
