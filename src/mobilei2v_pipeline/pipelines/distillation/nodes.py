"""Nodes of the distillation pipeline: the teacher's trajectories (made once), stage 1 (2-step regression)
and stage 2 (1-step distribution matching + adversarial + regression anchor)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mobilei2v_pipeline.models.i2v import denoiser_file, latent_clips, load_denoiser
from mobilei2v_pipeline.pipelines.distillation.task import (
    DistributionMatchingTask,
    TeacherTrajectories,
    TrajectoryRegressionTask,
    teacher_trajectories,
)
from mobilei2v_pipeline.training.loop import config_from_params, train


def make_teacher_trajectories(
    teacher_model: dict[str, Any],
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    latent_stats: dict[str, list[float]],
    teacher_sampling: dict[str, float],
    distillation: dict[str, Any],
) -> tuple[TeacherTrajectories, dict[str, float], dict[str, float]]:
    """The teacher's N-step samples from fixed noises, with its states at the student's times: train clips
    for stage 1 and the anchor of stage 2, a few val clips for both stages' validation. Returns them, their
    counts, and the wall time apart (a measured figure), so every DVC out of the stage is the same bytes on
    every run."""
    teacher = load_denoiser(teacher_model)
    settings = distillation["trajectories"]
    steps, shift = int(teacher_sampling["steps"]), float(teacher_sampling["shift"])
    clips = {
        "train": latent_clips(clip_latents, latent_table, latent_stats, "train"),
        "val": latent_clips(clip_latents, latent_table, latent_stats, "val").head(settings["val_clips"]),
    }
    seeds = {"train": settings["seeds_per_clip"], "val": settings["val_seeds_per_clip"]}
    started = time.perf_counter()
    made = {
        split: teacher_trajectories(
            teacher,
            clips[split],
            seeds[split],
            steps,
            distillation["student_steps"],
            shift,
            seed=settings["seed"] + (split == "val"),
            motion_range=settings["motion_range"],
            batch_size=settings["batch_size"],
        )
        for split in ("train", "val")
    }
    figures = {
        "trajectories_train": len(made["train"].states),
        "trajectories_val": len(made["val"].states),
        "trajectories_teacher_steps": steps,
    }
    measured = {"trajectories_seconds": time.perf_counter() - started}
    return TeacherTrajectories(made["train"], made["val"], steps, shift), figures, measured


def _task_inputs(
    teacher_model, trajectories, clip_latents, latent_table, latent_stats, vae, distillation, stage: str
) -> dict[str, Any]:
    """The keyword arguments both stages' tasks share; `val_clips` are the ones their samples show."""
    settings = distillation[stage]
    val_clips = latent_clips(clip_latents, latent_table, latent_stats, "val")
    return {
        "teacher_file": teacher_model,
        "train": trajectories.train,
        "val": trajectories.val,
        "val_clips": val_clips.head(distillation["sample_examples"]),
        "shift": trajectories.shift,
        "vae": vae.eval(),
        "stats": latent_stats,
        "settings": {k: v for k, v in settings.items() if k != "training"},
        "gradient_checkpointing": distillation["gradient_checkpointing"],
    }


def distill_stage1(
    teacher_model: dict[str, Any],
    teacher_trajectories: TeacherTrajectories,
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    latent_stats: dict[str, list[float]],
    vae: Any,
    checkpoints: Path,
    distillation: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Stage 1: the few-step student, a copy of the teacher trained on its trajectories' segments."""
    stage = distillation["stage1"]
    task = TrajectoryRegressionTask(
        **_task_inputs(
            teacher_model,
            teacher_trajectories,
            clip_latents,
            latent_table,
            latent_stats,
            vae,
            distillation,
            "stage1",
        )
    )
    result = train(task, config_from_params(stage["training"]), checkpoints)
    student = task.build_model()
    student.load_state_dict(result.state_dict)
    return denoiser_file(student.eval()), pd.DataFrame(result.history)


def distill_stage2(
    teacher_model: dict[str, Any],
    student1_model: dict[str, Any],
    teacher_trajectories: TeacherTrajectories,
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    latent_stats: dict[str, list[float]],
    vae: Any,
    checkpoints: Path,
    distillation: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Stage 2: the 1-step student, from stage 1, against a fake score network and a discriminator."""
    stage = distillation["stage2"]
    depth = teacher_model["config"]["depth"]
    if not all(0 <= block < depth for block in stage["discriminator"]["blocks"]):
        raise ValueError(
            f"distillation.stage2.discriminator.blocks {stage['discriminator']['blocks']} must be block "
            f"indices of the teacher, 0 to {depth - 1}"
        )
    task = DistributionMatchingTask(
        student1_model,
        latent_clips(clip_latents, latent_table, latent_stats, "train"),
        **_task_inputs(
            teacher_model,
            teacher_trajectories,
            clip_latents,
            latent_table,
            latent_stats,
            vae,
            distillation,
            "stage2",
        ),
    )
    result = train(task, config_from_params(stage["training"]), checkpoints)
    prefix = "student."
    student = load_denoiser(student1_model)
    student.load_state_dict(
        {k.removeprefix(prefix): v for k, v in result.state_dict.items() if k.startswith(prefix)}
    )
    return denoiser_file(student.eval()), pd.DataFrame(result.history)


def summarize_stage(history: pd.DataFrame, stage: str) -> dict[str, float]:
    """A stage's figures: its steps and each validation agreement figure at the start and at the end."""
    figures: dict[str, float] = {f"{stage}_steps": int(history["step"].max())}
    for column in sorted(c for c in history.columns if c.startswith("val_")):
        values = history[column].dropna()
        figures[f"{stage}_{column}_start"] = float(values.iloc[0])
        figures[f"{stage}_{column}_end"] = float(values.iloc[-1])
    return figures
