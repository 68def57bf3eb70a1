"""`teacher.pretrained_path`: the teacher stage imports a public MobileI2V checkpoint instead of training,
and stops with the folder's name when there is none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from reference.make_upstream_reference import load_fixture

from mobilei2v_pipeline.models.checkpoint_import import CheckpointImportError
from mobilei2v_pipeline.models.i2v import load_denoiser
from mobilei2v_pipeline.pipelines.teacher.nodes import summarize_teacher, train_teacher


def _teacher_params(pretrained_path: Path | None) -> dict:
    """The paper preset at the fixture's width (144 wide, 2 heads, FFN ratio 1), as a user overrides it."""
    return {
        "preset": "paper",
        "denoiser": {"hidden_size": 144, "num_heads": 2, "ffn_ratio": 1.0},
        "pretrained_path": str(pretrained_path) if pretrained_path else None,
        "validation_examples": 2,
    }


def _latents(channels: int) -> tuple[np.ndarray, pd.DataFrame, dict]:
    latents = np.random.default_rng(0).standard_normal((4, channels, 2, 4, 6)).astype(np.float32)
    table = pd.DataFrame(
        {
            "split": ["train", "train", "val", "val"],
            "motion_score": [1.0, 2.0, 3.0, 4.0],
            "height": 64,
            "width": 96,
        }
    )
    return latents, table, {"mean": [0.0] * channels, "std": [1.0] * channels}


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pretrained") / "mobilei2v"
    folder.mkdir()
    state_dict = load_fixture()["state_dict"]
    torch.save({"state_dict": state_dict}, folder / "hybrid_371.pth")
    return folder


def _import(latents: np.ndarray, table: pd.DataFrame, stats: dict, teacher: dict) -> tuple:
    """The training node with a pretrained checkpoint: it trains nothing, so writes no checkpoints."""
    return train_teacher(latents, table, stats, vae=None, checkpoints=Path("unused"), teacher=teacher)


def test_the_teacher_is_imported_and_not_trained(checkpoint_folder: Path) -> None:
    latents, table, stats = _latents(8)
    teacher = _teacher_params(checkpoint_folder)
    model_file, history = _import(latents, table, stats, teacher)
    model = load_denoiser(model_file)
    assert model.config.hidden_size == 144 and model.config.latent_channels == 8
    imported = load_fixture()["state_dict"]
    torch.testing.assert_close(
        model.state_dict()["blocks.7.attn.qkv.weight"], imported["blocks.7.attn.qkv.weight"].float()
    )
    metrics = summarize_teacher(model_file, history, teacher)
    assert metrics["teacher_pretrained"] == 1 and metrics["teacher_train_steps"] == 0
    assert metrics["teacher_val_loss_start"] == metrics["teacher_val_loss_end"] > 0


def test_an_empty_folder_stops_the_stage_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "01_raw" / "pretrained" / "mobilei2v"
    folder.mkdir(parents=True)
    latents, table, stats = _latents(8)
    with pytest.raises(FileNotFoundError, match=rf"{folder}.*teacher.pretrained_path: null"):
        _import(latents, table, stats, _teacher_params(folder))


def test_a_checkpoint_for_other_latents_is_refused(checkpoint_folder: Path) -> None:
    latents, table, stats = _latents(16)  # the autoencoder gives 16 channels, the checkpoint takes 8
    with pytest.raises(CheckpointImportError, match="takes 8-channel latents, the autoencoder gives 16"):
        _import(latents, table, stats, _teacher_params(checkpoint_folder))
