"""The data version tagged on every run: a content hash of the raw videos, or of the generator's settings
when the synthetic generator supplies the raw data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from mobilei2v_pipeline import storage
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.storage import VideoLocation


def data_version(
    user_videos: dict[str, VideoLocation], synthetic: dict[str, Any], cache: Path | None = None
) -> str:
    """`raw-<hash>` of the videos' names and contents, or `synthetic-<hash>` of the generator's settings.
    With `cache` (a JSON file), a video whose filesystem key (fsspec's `ukey`: size and modification time of
    a local file, an object store's ETag) is the one it had when last hashed is not read again: every
    `kedro run` of a `dvc repro` tags its run, and the videos are gigabytes, perhaps in object storage."""
    digest = hashlib.sha256()
    if not user_videos:
        digest.update(json.dumps(synthetic, sort_keys=True).encode())
        return f"synthetic-{digest.hexdigest()[:12]}"
    known = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    hashes = {}
    for name, location in sorted(user_videos.items()):
        fs, path = storage.filesystem(location)
        key = str(Path(path).resolve()) if isinstance(fs, LocalFileSystem) else str(location)
        entry, ukey = known.get(key), fs.ukey(path)
        if not entry or entry.get("ukey") != ukey:
            entry = {"ukey": ukey, "sha256": _file_sha256(fs, path)}
        hashes[key] = entry
        digest.update(name.encode() + b"\0" + entry["sha256"].encode())
    if cache is not None and hashes != {k: known.get(k) for k in hashes}:
        # Other envs' videos stay cached; local files that are gone are dropped.
        kept = {k: v for k, v in known.items() if "://" in k or Path(k).exists()}
        atomic_write_bytes(cache, (json.dumps(kept | hashes, indent=1, sort_keys=True) + "\n").encode())
    return f"raw-{digest.hexdigest()[:12]}"


def _file_sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
