"""Nodes of the teacher pipeline: train the many-step MobileI2V teacher and show what it generates."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import DenoiserConfig, get_preset
from mobilei2v_pipeline.models.i2v import denoiser_file, load_denoiser
from mobilei2v_pipeline.pipelines.teacher.task import LatentClips, TeacherTask, render_samples
from mobilei2v_pipeline.training.loop import config_from_params, train

logger = logging.getLogger(__name__)


def denoiser_config(teacher: dict[str, Any], latent_channels: int) -> DenoiserConfig:
    """The preset's denoiser with the configured overrides; the channels follow the autoencoder's latents."""
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in teacher["denoiser"].items()}
    return dataclasses.replace(
        get_preset(teacher["preset"]).denoiser, **overrides, latent_channels=latent_channels
    )


def latent_clips(
    latents: np.ndarray, table: pd.DataFrame, stats: dict[str, list[float]], split: str
) -> LatentClips:
    """One split's normalised latents with motion scores and clip size."""
    rows = (table["split"] == split).to_numpy()
    return LatentClips(
        latents=ae.normalize(torch.as_tensor(latents[rows]), stats),
        motion=torch.as_tensor(table.loc[rows, "motion_score"].to_numpy(), dtype=torch.float32),
        height=int(table["height"].iloc[0]),
        width=int(table["width"].iloc[0]),
    )


def train_teacher(
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    latent_stats: dict[str, list[float]],
    vae: Any,
    teacher: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Rectified-flow training with the first frame pinned; returns the EMA weights with their config."""
    config = denoiser_config(teacher, clip_latents.shape[1])
    task = TeacherTask(
        config,
        latent_clips(clip_latents, latent_table, latent_stats, "train"),
        latent_clips(clip_latents, latent_table, latent_stats, "val").head(teacher["validation_examples"]),
        teacher["timesteps"],
        teacher["sampling"],
        vae.eval(),
        latent_stats,
        teacher["gradient_checkpointing"],
    )
    result = train(task, config_from_params(teacher["training"]), teacher["checkpoint_dir"])
    model = task.build_model()
    model.load_state_dict(result.state_dict)
    return denoiser_file(model), pd.DataFrame(result.history)


def summarize_teacher(teacher_model: dict[str, Any], history: pd.DataFrame) -> dict[str, float]:
    """The stage's figures: size, steps, and the validation loss at the start and the end of training."""
    val = history.dropna(subset=["val_loss"]) if "val_loss" in history else history.iloc[:0]
    train_loss = history["loss"].dropna() if "loss" in history else pd.Series(dtype=float)
    tail = train_loss.iloc[-max(1, len(train_loss) // 10) :]
    return {
        "teacher_params": sum(v.numel() for v in teacher_model["state_dict"].values()),
        "teacher_train_steps": int(history["step"].max()),
        "teacher_val_loss_start": float(val["val_loss"].iloc[0]),
        "teacher_val_loss_end": float(val["val_loss"].iloc[-1]),
        "teacher_train_loss_end": float(tail.mean()),
    }


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
        load_denoiser(teacher_model), vae.eval(), latent_stats, clips, teacher["sampling"], 4
    )
