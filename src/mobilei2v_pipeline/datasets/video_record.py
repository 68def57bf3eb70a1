"""Curation's per-video records as safetensors files (the frames of the kept clips and every clip's thumbnail
as uint8 tensors, the rest as JSON in the header), and a read-only view of such a folder as {clip id: frames}.

safetensors because a reader opens a file's header without reading its arrays, and reads one array without the
others (memory-mapped), and because the same record is the same bytes on every run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError
from safetensors import safe_open
from safetensors.numpy import save

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.video.record import VideoRecord

FRAMES, THUMBNAILS = "frames/", "thumbnails/"


def _read(path: Path, key: str) -> np.ndarray:
    with safe_open(str(path), framework="np") as file:
        return file.get_tensor(key)


class _Tensors(Mapping[str, np.ndarray]):
    """The arrays of one file under a prefix, by name, read when asked for."""

    def __init__(self, path: Path, prefix: str, keys: list[str]):
        self._path, self._prefix = path, prefix
        self._names = [key.removeprefix(prefix) for key in keys if key.startswith(prefix)]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        return _read(self._path, self._prefix + name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class VideoRecordDataset(AbstractDataset[VideoRecord, VideoRecord]):
    """One `VideoRecord` in one file, written atomically."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> VideoRecord:
        with safe_open(str(self._filepath), framework="np") as file:
            header, keys = json.loads(file.metadata()["record"]), list(file.keys())
        return VideoRecord(
            **header,
            frames=_Tensors(self._filepath, FRAMES, keys),
            thumbnails=_Tensors(self._filepath, THUMBNAILS, keys),
        )

    def handoff(self, data: VideoRecord) -> VideoRecord:
        """Write `data` here and return it as a small record that names this file: saving that record to
        its destination moves the file there (a worker's way of handing over a record's frames)."""
        self.save(data)
        return dataclasses.replace(self.load(), handoff_file=str(self._filepath))

    def save(self, data: VideoRecord) -> None:
        if data.handoff_file:  # already written by a worker: moved into place, atomically
            self._filepath.parent.mkdir(parents=True, exist_ok=True)
            partial_path = self._filepath.with_name(f".{self._filepath.name}.tmp")
            shutil.move(data.handoff_file, partial_path)
            os.replace(partial_path, self._filepath)
            return
        tensors = {FRAMES + k: np.ascontiguousarray(v) for k, v in data.frames.items()}
        tensors |= {THUMBNAILS + k: np.ascontiguousarray(v) for k, v in data.thumbnails.items()}
        header = json.dumps(data.header(), sort_keys=True)
        atomic_write_bytes(self._filepath, save(tensors, metadata={"record": header}))

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}


class CuratedClipsDataset(AbstractDataset[None, dict[str, Callable[[], np.ndarray]]]):
    """The frames of every kept clip in a folder of records, by clip id, each read when its callable is
    called.

    A read-only view: the records are written through the same folder's `PartitionedDataset` of
    `VideoRecordDataset` (the catalog names both as one transcoded dataset, `curated_clips@records` and
    `curated_clips@frames`, so Kedro orders the reader after the writer)."""

    def __init__(
        self, path: str, filename_suffix: str = ".safetensors", metadata: dict[str, Any] | None = None
    ):
        self._path = Path(path)
        self._suffix = filename_suffix
        self.metadata = metadata

    def load(self) -> dict[str, Callable[[], np.ndarray]]:
        clips = {}
        for path in sorted(self._path.rglob(f"*{self._suffix}")):
            with safe_open(str(path), framework="np") as file:
                keys = [key for key in file.keys() if key.startswith(FRAMES)]  # noqa: SIM118 (not a dict)
            clips |= {key.removeprefix(FRAMES): partial(_read, path, key) for key in keys}
        return clips

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._path} is written as records (curated_clips@records), not clip by clip")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "filename_suffix": self._suffix}
