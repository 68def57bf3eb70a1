"""`mobilei2v generate`: image to video with the models a run of this project trained."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch
from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog
from kedro.utils import find_kedro_project
from PIL import Image, ImageOps, UnidentifiedImageError

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.i2v import image_to_video, load_denoiser


def generate_video(
    image_path: Path,
    motion: float,
    steps: int,
    model: str,
    env: str | None,
    seed: int,
    shift: float,
    start: Path,
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of a video whose first frame is the image, resized to the trained size."""
    image = read_image(image_path)
    root = _project_root(start)
    catalog = _catalog(root, env)
    with contextlib.chdir(root):  # catalog paths are relative to the project
        if not catalog.exists(f"{model}_model"):
            pipeline = "teacher" if model == "teacher" else "distillation"
            raise click.ClickException(
                f"no trained {model}: {model}_model is missing. Run `make run` (or `kedro run --pipelines "
                f"{pipeline}`{' --env ' + env if env else ''}) first."
            )
        check_motion(motion, model, catalog.load("clip_table"))
        denoiser = load_denoiser(catalog.load(f"{model}_model"))
        vae, stats, table = (
            catalog.load("vae").eval(),
            catalog.load("latent_stats"),
            catalog.load("latent_table"),
        )
    frames, height, width = (int(table[c].iloc[0]) for c in ("frames", "height", "width"))
    pixels = ae.to_model_range(_cover(image, height, width)[None, None])[0, :, 0]
    video = image_to_video(
        denoiser, vae, stats, pixels, motion, frames, steps, shift, torch.Generator().manual_seed(seed)
    )
    return ae.to_uint8(video)[0]


def check_motion(motion: float, model: str, clip_table: pd.DataFrame) -> None:
    """Refuse a motion score outside the range of the train clips' scores: the model has seen none there."""
    train = clip_table.loc[clip_table["split"] == "train", "motion_score"]
    low, high = float(train.min()), float(train.max())
    if not low <= motion <= high:
        raise click.ClickException(
            f"--motion {motion:g} is outside the range the {model} was trained on: {low:.2f} to {high:.2f} "
            "(the motion scores of the train clips in the clip table)"
        )


def read_image(path: Path) -> np.ndarray:
    """The image as RGB, turned upright by its EXIF orientation as a photo viewer shows it."""
    if not path.is_file():
        raise click.ClickException(f"image {path}: no such file")
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise click.ClickException(f"image {path}: not a readable image ({exc})") from exc


def _cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize so the image covers height x width, then crop the centre (as curation does to clips)."""
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[top : top + height, left : left + width]


def _project_root(start: Path) -> Path:
    root = find_kedro_project(start.resolve())
    if root is None:
        raise click.ClickException(
            f"{start} is not inside a mobilei2v-pipeline project (no pyproject.toml with [tool.kedro])"
        )
    return root


def _catalog(root: Path, env: str | None) -> DataCatalog:
    bootstrap_project(root)
    loader = OmegaConfigLoader(str(root / settings.CONF_SOURCE), env=env, **settings.CONFIG_LOADER_ARGS)
    return DataCatalog.from_config(loader["catalog"])
