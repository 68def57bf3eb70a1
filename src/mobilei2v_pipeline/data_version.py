"""The data version tagged on every run: a content hash of the raw videos, or of the generator's settings
when the synthetic generator supplies the raw data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mobilei2v_pipeline.atomic_write import atomic_write_bytes


def data_version(user_videos: dict[str, Path], synthetic: dict[str, Any], cache: Path | None = None) -> str:
    """`raw-<hash>` of the videos' names and contents, or `synthetic-<hash>` of the generator's settings.
    With `cache` (a JSON file), a video whose size and modification time are those it had when last hashed
    is not read again: every `kedro run` of a `dvc repro` tags its run, and the videos are gigabytes."""
    digest = hashlib.sha256()
    if not user_videos:
        digest.update(json.dumps(synthetic, sort_keys=True).encode())
        return f"synthetic-{digest.hexdigest()[:12]}"
    known = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    hashes = {}
    for name, path in sorted(user_videos.items()):
        key, stat = str(Path(path).resolve()), Path(path).stat()
        entry = known.get(key)
        if not entry or (entry["size"], entry["mtime_ns"]) != (stat.st_size, stat.st_mtime_ns):
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _file_sha256(path)}
        hashes[key] = entry
        digest.update(name.encode() + b"\0" + entry["sha256"].encode())
    if cache is not None and hashes != {k: known.get(k) for k in hashes}:
        kept = {k: v for k, v in known.items() if Path(k).exists()}  # other envs' videos stay cached
        atomic_write_bytes(cache, (json.dumps(kept | hashes, indent=1, sort_keys=True) + "\n").encode())
    return f"raw-{digest.hexdigest()[:12]}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
