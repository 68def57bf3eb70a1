"""Both distillation stages on the smoke run's teacher and trajectories: each improves its objective."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO
from kedro.config import OmegaConfigLoader

from mobilei2v_pipeline.datasets.torch_file import TorchFileDataset
from mobilei2v_pipeline.models.autoencoder import load_pretrained_vae
from mobilei2v_pipeline.models.i2v import latent_clips
from mobilei2v_pipeline.pipelines.distillation import nodes
from mobilei2v_pipeline.pipelines.distillation.task import (
    DistributionMatchingTask,
    TeacherTrajectories,
    TrajectoryRegressionTask,
    student_times_in_teacher_schedule,
)
from mobilei2v_pipeline.pipelines.teacher.nodes import denoiser_config


@pytest.fixture(scope="module")
def inputs(trained_project: Path) -> dict:
    data = trained_project / "data"
    catalog = OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="base")["catalog"]
    trajectories = catalog["teacher_trajectories"]  # read as the catalog reads it
    return {
        "teacher_model": torch.load(data / "06_models/teacher/teacher.pt", weights_only=True),
        "teacher_trajectories": TorchFileDataset(
            str(data / "05_model_input/teacher_trajectories.pt"), record=trajectories["record"]
        ).load(),
        "clip_latents": np.load(data / "05_model_input/clip_latents.npy"),
        "latent_table": pd.read_parquet(data / "05_model_input/latent_table.parquet"),
        "latent_stats": json.loads((data / "05_model_input/latent_stats.json").read_text()),
        "vae": load_pretrained_vae(data / "06_models/vae"),
    }


def _env_params(env: str) -> dict:
    loader = OmegaConfigLoader(
        str(REPO / "conf"), base_env="base", default_run_env=env, merge_strategy={"parameters": "soft"}
    )
    return loader["parameters"]


@pytest.mark.parametrize("env", ["base", "smoke", "paper"])
def test_every_env_distills_on_the_teachers_grid_with_real_blocks(env: str):
    params = _env_params(env)
    sampling, distillation = params["teacher"]["sampling"], params["distillation"]
    student_times_in_teacher_schedule(sampling["steps"], distillation["student_steps"], sampling["shift"])
    depth = denoiser_config(params["teacher"], latent_channels=16).depth
    assert max(distillation["stage2"]["discriminator"]["blocks"]) < depth


def _params(**training) -> dict:
    distillation = _env_params("smoke")["distillation"]
    for stage in ("stage1", "stage2"):
        distillation[stage]["training"].update(training)
    return distillation


def _falls(history: pd.DataFrame, column: str) -> tuple[float, float]:
    values = history[column].dropna().to_numpy()
    return values[:5].mean(), values[-5:].mean()


def test_trajectories_hold_the_teacher_states_at_the_student_times(inputs: dict, trained_project: Path):
    trajectories = inputs["teacher_trajectories"]
    assert isinstance(trajectories, TeacherTrajectories) and trajectories.shift == 3.0
    train = trajectories.train
    assert train.states.shape[1] == 3  # noise, the 2-step student's middle time, the teacher's sample
    torch.testing.assert_close(train.times, torch.tensor([1.0, 0.75, 0.0]))  # shift 3
    train_clips = (inputs["latent_table"]["split"] == "train").sum()
    assert len(train.states) == 2 * train_clips  # smoke: 2 noises per clip
    metrics = json.loads((trained_project / "data/08_reporting/distillation_trajectories.json").read_text())
    assert metrics["trajectories_train"] == len(train.states)


def test_stage1_regression_and_stage2_distribution_matching_each_improve(inputs: dict, tmp_path: Path):
    # The base stage-1 rate: the smoke teacher's 2- and N-step samples start close (MSE ~3e-4 on the micro
    # VAE's latents), and 2e-3's first Adam steps move the student further away than that.
    params = _params(steps=40, learning_rate=2e-4, validate_every=40)
    student1, history1 = nodes.distill_stage1(**inputs, checkpoints=tmp_path / "stage1", distillation=params)
    start, end = _falls(history1, "loss")
    assert end < 0.7 * start, (start, end)
    val = history1["val_agreement_mse_2step"].dropna()
    assert val.iloc[-1] < val.iloc[0]  # closer to the teacher's N steps, in 2 steps, on val clips

    student2, history2 = nodes.distill_stage2(
        **inputs, student1_model=student1, checkpoints=tmp_path / "stage2", distillation=params
    )
    for column in ("student_regression", "fake_score_loss"):
        start, end = _falls(history2, column)
        assert end < start, (column, start, end)
    assert {"student_dmd", "student_adversarial", "discriminator_loss"} <= set(history2.columns)
    val = history2["val_agreement_mse_1step"].dropna()
    assert val.iloc[-1] < val.iloc[0]  # closer to the teacher's N steps, in 1 step
    assert student2["config"] == student1["config"] == inputs["teacher_model"]["config"]


def test_gradient_checkpointing_reaches_every_denoiser_of_both_stages(inputs: dict):
    distillation = _params() | {"gradient_checkpointing": True}
    kwargs = [inputs[k] for k in ("teacher_model", "teacher_trajectories", "clip_latents", "latent_table")]
    kwargs += [inputs["latent_stats"], inputs["vae"], distillation]
    stage1 = TrajectoryRegressionTask(**nodes._task_inputs(*kwargs, "stage1"))
    assert stage1.build_model().gradient_checkpointing
    train = latent_clips(inputs["clip_latents"], inputs["latent_table"], inputs["latent_stats"], "train")
    stage2 = DistributionMatchingTask(inputs["teacher_model"], train, **nodes._task_inputs(*kwargs, "stage2"))
    networks = stage2.build_model()
    assert all(n.gradient_checkpointing for n in (networks.student, networks.fake_score, networks.teacher))
