"""A folder of video files, listed as {relative name: location}; decoding is left to readers that know which
frames they need, so a long video is never read whole just to be listed. The folder may be local or on any
fsspec filesystem (`s3://bucket/videos`, see `storage`)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from kedro.io import AbstractDataset
from tqdm.auto import tqdm

from mobilei2v_pipeline import storage
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.storage import VideoLocation


class VideoFolderDataset(AbstractDataset[dict[str, bytes | Callable[[], bytes]], dict[str, VideoLocation]]):
    """Loads every non-hidden file below `path` (an empty or missing folder gives {}): a local file as its
    Path, a remote one as its URL, which any process with the filesystem's credentials can open.

    Saving takes {relative name: bytes or a callable returning bytes}; callables are called one at a time, so
    a generator of many large videos never holds them all in memory. Files from an earlier save that are not
    in the new one are removed, so the folder always holds exactly the last save. A local file is written
    atomically; an object store makes a whole object visible only once it is written.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._url = path
        self._fs, self._root = storage.filesystem(path)
        self.metadata = metadata

    def load(self) -> dict[str, VideoLocation]:
        if not self._fs.isdir(self._root):
            return {}
        found = {posixpath.relpath(path, self._root): path for path in self._fs.find(self._root)}
        return {
            name: storage.location(self._fs, path)
            for name, path in sorted(found.items())
            if not any(part.startswith(".") for part in name.split("/"))
        }

    def save(self, data: dict[str, bytes | Callable[[], bytes]]) -> None:
        self._fs.makedirs(self._root, exist_ok=True)  # even empty: DVC wants its out to exist
        stale = set(self.load()) - set(data)
        progress = tqdm(
            data.items(), desc=f"write {posixpath.basename(self._root)}", unit="file", disable=not data
        )
        for name, content in progress:
            path = posixpath.join(self._root, name)
            if isinstance(self._fs, LocalFileSystem):
                atomic_write_bytes(path, content() if callable(content) else content)
            else:
                self._fs.pipe_file(path, content() if callable(content) else content)
        for name in stale:
            self._fs.rm_file(posixpath.join(self._root, name))

    def _exists(self) -> bool:
        return self._fs.isdir(self._root)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._url}
