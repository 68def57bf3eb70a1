"""Nodes of the teacher pipeline: train the many-step MobileI2V teacher and show what it generates."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mobilei2v_pipeline.models.checkpoint_import import (
    CheckpointImportError,
    checkpoint_file,
    import_public_checkpoint,
)
from mobilei2v_pipeline.models.config import DenoiserConfig, get_preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.i2v import denoiser_file, latent_clips, load_denoiser, render_samples
from mobilei2v_pipeline.pipelines.teacher.task import TeacherTask, validation_loss
from mobilei2v_pipeline.training.loop import config_from_params, train

logger = logging.getLogger(__name__)


def denoiser_config(teacher: dict[str, Any], latent_channels: int) -> DenoiserConfig:
    """The preset's denoiser with the configured overrides; the channels follow the autoencoder's latents."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in teacher["denoiser"].items()}
    return dataclasses.replace(
        get_preset(teacher["preset"]).denoiser, **overrides, latent_channels=latent_channels
    )


def train_teacher(
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    latent_stats: dict[str, list[float]],
    vae: Any,
    checkpoints: Path,
    teacher: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Rectified-flow training with the first frame pinned; returns the EMA weights with their config.

    With `teacher.pretrained_path` set, training is skipped: the public MobileI2V checkpoint there is
    imported, and the history holds its validation loss on this project's val clips, at step 0.
    """
    config = denoiser_config(teacher, clip_latents.shape[1])
    val = latent_clips(clip_latents, latent_table, latent_stats, "val").head(teacher["validation_examples"])
    if teacher.get("pretrained_path"):
        model = import_teacher(teacher["pretrained_path"], config)
        history = pd.DataFrame({"step": [0], "val_loss": [validation_loss(model, val)]})
        return denoiser_file(model), history
    task = TeacherTask(
        config,
        latent_clips(clip_latents, latent_table, latent_stats, "train"),
        val,
        teacher["timesteps"],
        teacher["sampling"],
        vae.eval(),
        latent_stats,
        teacher["gradient_checkpointing"],
        teacher["sample_examples"],
    )
    result = train(task, config_from_params(teacher["training"]), checkpoints)
    model = task.build_model()
    model.load_state_dict(result.state_dict)
    return denoiser_file(model), pd.DataFrame(result.history)


def import_teacher(pretrained_path: str, config: DenoiserConfig) -> MobileI2VDenoiser:
    """The public checkpoint at `pretrained_path` as the teacher, checked against the latents it will see."""
    try:
        path = checkpoint_file(pretrained_path)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"teacher.pretrained_path: {error}. Put the public MobileI2V checkpoint there, or set "
            "teacher.pretrained_path: null to train the teacher from scratch"
        ) from error
    logger.info("Importing the public MobileI2V checkpoint %s as the teacher; training skipped", path)
    model = import_public_checkpoint(path, config)
    if model.config.latent_channels != config.latent_channels:
        raise CheckpointImportError(
            f"the checkpoint at {path} takes {model.config.latent_channels}-channel latents, the autoencoder "
            f"gives {config.latent_channels}: use the autoencoder it was trained with (the LTX-Video VAE, "
            "autoencoder.pretrained_path)"
        )
    return model


def summarize_teacher(
    teacher_model: dict[str, Any], history: pd.DataFrame, teacher: dict[str, Any]
) -> dict[str, float]:
    """The stage's figures: size, steps, whether it was imported, and the validation loss at the start and
    the end of training (of the imported checkpoint, both)."""
    val = history.dropna(subset=["val_loss"]) if "val_loss" in history else history.iloc[:0]
    train_loss = history["loss"].dropna() if "loss" in history else pd.Series(dtype=float)
    tail = train_loss.iloc[-max(1, len(train_loss) // 10) :]
    metrics = {
        "teacher_params": sum(v.numel() for v in teacher_model["state_dict"].values()),
        "teacher_pretrained": int(bool(teacher.get("pretrained_path"))),
        "teacher_train_steps": int(history["step"].max()),
        "teacher_val_loss_start": float(val["val_loss"].iloc[0]),
        "teacher_val_loss_end": float(val["val_loss"].iloc[-1]),
    }
    if len(tail):
        metrics["teacher_train_loss_end"] = float(tail.mean())
    return metrics


def render_teacher_samples(
    teacher_model: dict[str, Any],
    vae: Any,
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    latent_stats: dict[str, list[float]],
    teacher: dict[str, Any],
) -> np.ndarray:
    """Val examples as rows of input image | teacher video | ground truth, for MLflow."""
    clips = latent_clips(clip_latents, latent_table, latent_stats, "val")
    return render_samples(
        load_denoiser(teacher_model),
        vae.eval(),
        latent_stats,
        clips,
        teacher["sampling"],
        teacher["sample_examples"],
    )
