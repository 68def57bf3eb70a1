"""The teacher task in the shared loop: two data-parallel CPU processes end with the same weights."""

from __future__ import annotations

from pathlib import Path

import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import DenoiserConfig
from mobilei2v_pipeline.models.i2v import LatentClips
from mobilei2v_pipeline.pipelines.teacher.task import TeacherTask
from mobilei2v_pipeline.training.loop import TrainingConfig, train


def _task() -> TeacherTask:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn((8, 16, 2, 4, 7), generator=generator)
    clips = LatentClips(latents, torch.rand(8, generator=generator) * 4, height=64, width=112)
    config = DenoiserConfig(latent_channels=16, hidden_size=36, depth=2, num_heads=2, softmax_blocks=(1,))
    stats = {"mean": [0.0] * 16, "std": [1.0] * 16}
    return TeacherTask(
        config,
        clips,
        clips.head(2),
        {"mean": 0.0, "std": 1.0},
        {"steps": 2, "shift": 3.0},
        ae.build_vae("micro").eval(),
        stats,
    )


def test_two_cpu_processes_train_the_teacher_data_parallel(tmp_path: Path):
    config = TrainingConfig(steps=4, batch_size=4, learning_rate=1e-3, num_processes=2, checkpoint_every=2)
    result = train(_task(), config, tmp_path)
    assert len(result.rank_checksums) == 2 and result.rank_checksums[0] == result.rank_checksums[1]
    assert [row["step"] for row in result.history if "loss" in row] == [1, 2, 3, 4]
