"""The data version tagged on every run: a content hash of the raw videos, or of the generator's settings
when the synthetic generator supplies the raw data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def data_version(user_videos: dict[str, Path], synthetic: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    if not user_videos:
        digest.update(json.dumps(synthetic, sort_keys=True).encode())
        return f"synthetic-{digest.hexdigest()[:12]}"
    for name, path in sorted(user_videos.items()):
        digest.update(name.encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return f"raw-{digest.hexdigest()[:12]}"
