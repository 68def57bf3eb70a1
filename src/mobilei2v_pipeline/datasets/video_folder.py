"""A folder of video files, listed as {relative name: path}; decoding is left to readers that know which
frames they need, so a long video is never read whole just to be listed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset
from tqdm.auto import tqdm

from mobilei2v_pipeline.atomic_write import atomic_write_bytes


class VideoFolderDataset(AbstractDataset[dict[str, bytes | Callable[[], bytes]], dict[str, Path]]):
    """Loads every non-hidden file below `path` (an empty or missing folder gives {}).

    Saving takes {relative name: bytes or a callable returning bytes}; callables are called one at a time, so
    a generator of many large videos never holds them all in memory. Files from an earlier save that are not
    in the new one are removed, so the folder always holds exactly the last save.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, Path]:
        if not self._path.is_dir():
            return {}
        files = (p for p in sorted(self._path.rglob("*")) if p.is_file())
        return {
            p.relative_to(self._path).as_posix(): p
            for p in files
            if not any(part.startswith(".") for part in p.relative_to(self._path).parts)
        }

    def save(self, data: dict[str, bytes | Callable[[], bytes]]) -> None:
        self._path.mkdir(parents=True, exist_ok=True)  # even empty: DVC wants its out to exist
        stale = set(self.load()) - set(data)
        progress = tqdm(data.items(), desc=f"write {self._path.name}", unit="file", disable=not data)
        for name, content in progress:
            atomic_write_bytes(self._path / name, content() if callable(content) else content)
        for name in stale:
            (self._path / name).unlink()

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
