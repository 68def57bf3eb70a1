"""`mobilei2v generate`: image to video with the models a run of this project trained."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import av
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
from mobilei2v_pipeline.video.decode import cover_and_crop


def generate_video(
    image_path: Path,
    motion: float,
    steps: int | None,
    model: str,
    env: str | None,
    seed: int,
    shift: float | None,
    start: Path,
) -> tuple[np.ndarray, int]:
    """Frames (T, H, W, 3) uint8 of a video whose first frame is the image, resized to the trained size, and
    the steps taken. Without `steps` or `shift`, the env's: the teacher's sampling steps, the students'
    distilled steps, the teacher's shift."""
    image = read_image(image_path)
    root = _project_root(start)
    catalog, parameters = _config(root, env)
    steps = steps or model_steps(model, parameters)
    shift = shift if shift is not None else float(parameters["teacher"]["sampling"]["shift"])
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
    upright = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    pixels = ae.to_model_range(cover_and_crop(upright, height, width)[None, None])[0, :, 0]
    video = image_to_video(
        denoiser, vae, stats, pixels, motion, frames, steps, shift, torch.Generator().manual_seed(seed)
    )
    return ae.to_uint8(video)[0], steps


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


def _project_root(start: Path) -> Path:
    root = find_kedro_project(start.resolve())
    if root is None:
        raise click.ClickException(
            f"{start} is not inside a mobilei2v-pipeline project (no pyproject.toml with [tool.kedro])"
        )
    return root


def _config(root: Path, env: str | None) -> tuple[DataCatalog, dict[str, Any]]:
    bootstrap_project(root)
    loader = OmegaConfigLoader(str(root / settings.CONF_SOURCE), env=env, **settings.CONFIG_LOADER_ARGS)
    return DataCatalog.from_config(loader["catalog"]), loader["parameters"]


def model_steps(model: str, parameters: dict[str, Any]) -> int:
    """The sampling steps a model was made for: the teacher's, stage 1's student's, 1 for stage 2's."""
    steps = {"teacher": parameters["teacher"]["sampling"]["steps"]}
    steps |= {"student1": parameters["distillation"]["student_steps"], "student2": 1}
    return int(steps[model])
