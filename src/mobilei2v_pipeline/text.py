"""Names made from free text (device names) that fit file names, metric keys and MLflow tags."""

import re


def slug(text: str) -> str:
    """ "Samsung Galaxy S24 (Family)" -> "samsung_galaxy_s24_family"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
