"""Where raw videos may live: a local folder or any fsspec filesystem (`s3://`, `gs://`, `az://`, `hf://`,
`memory://`, ...). Local files go to FFmpeg by path (its own I/O is the fastest); the others are read through
fsspec's file objects, which PyAV reads and seeks like a file, fetching only the byte ranges a clip needs.

Credentials come from each filesystem's own chain (environment variables, instance roles, its config files),
never from the catalog: a pool or Ray worker that has them reads the same URLs as the process that listed
them, and no secret travels in a task's arguments. A remote protocol needs its fsspec package (`s3fs`,
`gcsfs`, `adlfs`) installed on every machine that reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem

VideoLocation = Path | str  # a local path, or the URL of a file on another filesystem


def filesystem(location: VideoLocation) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem of `location` and the path within it (`file://` URLs and plain paths are local)."""
    return fsspec.core.url_to_fs(str(location))


def location(fs: fsspec.AbstractFileSystem, path: str) -> VideoLocation:
    """How a file found on `fs` is handed on: a Path when it is local, else its full URL."""
    return Path(path) if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def size(location: VideoLocation) -> int:
    """The file's size in bytes; OSError (FileNotFoundError, PermissionError, ...) when it cannot be read."""
    fs, path = filesystem(location)
    return fs.size(path)


@contextmanager
def readable(location: VideoLocation) -> Iterator[str | IO[bytes]]:
    """What PyAV opens: the local path itself, or an open, seekable fsspec file."""
    fs, path = filesystem(location)
    if isinstance(fs, LocalFileSystem):
        yield path
        return
    with fs.open(path, "rb") as handle:
        yield handle


def under(root: Path, configured: str) -> VideoLocation:
    """A catalog path as the project reads it: URLs as they are, relative paths below the project root."""
    return configured if "://" in configured else root / configured
