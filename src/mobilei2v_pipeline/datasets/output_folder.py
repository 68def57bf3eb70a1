"""A folder of partitions that exists after every save, even of none, and loads as {} when it holds none: a
DVC out must exist, and a config may ask for no partitions (e.g. `export.executorch.graphs: []`)."""

from __future__ import annotations

from typing import Any

from kedro_datasets.partitions import PartitionedDataset


class OutputFolderDataset(PartitionedDataset):
    def load(self) -> dict[str, Any]:
        return super().load() if self._list_partitions() else {}

    def save(self, data: dict[str, Any]) -> None:
        super().save(data)
        self._filesystem.mkdirs(self._normalized_path, exist_ok=True)
