"""The autoencoder and teacher stages after one whole smoke run (shared), and `mobilei2v generate`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import copy_project, run_kedro, use_project
from PIL import Image

from mobilei2v_pipeline.models.i2v import load_denoiser
from mobilei2v_pipeline.training.loop import checkpoints
from mobilei2v_pipeline.video.decode import probe_video

REPORTS = Path("data/08_reporting")


def _json(project: Path, name: str) -> dict:
    return json.loads((project / REPORTS / name).read_text())


def _mobilei2v(project: Path, *args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "mobilei2v"
    return subprocess.run([str(script), *args], cwd=project, capture_output=True, text=True, timeout=300)


def test_autoencoder_is_trained_and_every_clip_is_encoded_once(trained_project: Path):
    clips = pd.read_parquet(trained_project / "data/03_primary/clip_table.parquet")
    latents = np.load(trained_project / "data/05_model_input/clip_latents.npy")
    first = np.load(trained_project / "data/05_model_input/first_frame_latents.npy")
    assert latents.shape == (len(clips), 16, 2, 4, 7)  # 9 x 64 x 112 clips, 8x / 16x compression
    assert first.shape == (len(clips), 16, 1, 4, 7)
    np.testing.assert_allclose(first[:, :, 0], latents[:, :, 0], atol=1e-4)  # the causal encoder's frame 0
    stats = json.loads((trained_project / "data/05_model_input/latent_stats.json").read_text())
    assert len(stats["mean"]) == len(stats["std"]) == 16
    metrics = _json(trained_project, "autoencoder.json")
    assert metrics["vae_pretrained"] == 0 and metrics["vae_train_steps"] == 20
    # Learning itself is tested on the VAE (tests/models); 20 smoke steps only show the loop's bookkeeping.
    history = pd.read_csv(trained_project / REPORTS / "autoencoder_history.csv")
    history = history.dropna(subset=["val_psnr_db"])
    assert history["step"].tolist() == [0, 10, 20]
    assert metrics["vae_val_psnr_db"] == pytest.approx(history["val_psnr_db"].iloc[-1], abs=0.5)
    # The five figures of what the autoencoders keep, measured on decoded whole frames of the val clips.
    kept = {"vae_val_psnr_db", "vae_val_motion_ratio", "vae_val_motion_spearman", "light_val_psnr_db"}
    assert kept | {"vae_train_psnr_db"} <= set(metrics)
    assert metrics["vae_val_motion_ratio"] >= 0 and 5 < metrics["light_val_psnr_db"] < 60
    assert (trained_project / "data/06_models/vae/config.json").exists()
    light = _json(trained_project, "light_autoencoder.json")
    assert {"light_val_decoder_psnr_vs_vae_db", "light_val_encoder_mse", "light_params"} <= set(light)
    assert (trained_project / "data/06_models/light_autoencoder.pt").exists()


def test_teacher_loss_falls_and_checkpoints_are_kept(trained_project: Path):
    metrics = _json(trained_project, "teacher.json")
    assert metrics["teacher_train_steps"] == 30
    assert metrics["teacher_val_loss_end"] < metrics["teacher_val_loss_start"]
    kept = checkpoints(trained_project / "data/06_models/teacher/checkpoints")
    assert [p.name for p in kept] == ["checkpoint-0000020", "checkpoint-0000030"]  # every 10 steps, 2 kept
    model = torch.load(trained_project / "data/06_models/teacher/teacher.pt", weights_only=True)
    assert load_denoiser(model).config.hidden_size == 36
    samples = probe_video(trained_project / REPORTS / "teacher_samples.mp4")
    assert samples.num_frames == 9 and samples.width == 3 * 112  # image | generated | ground truth


def test_training_curves_and_samples_reach_mlflow(trained_project: Path):
    # The whole smoke run: the first run with teacher figures (later tests rerun parts of copies of it).
    runs = mlflow.search_runs(
        experiment_names=["mobilei2v"],
        filter_string="tags.kedro_env = 'smoke' and metrics.teacher_val_loss_end > 0",
    )
    run_id = runs.sort_values("start_time")["run_id"].iloc[0]
    client = mlflow.MlflowClient()
    assert len(client.get_metric_history(run_id, "loss")) >= 30  # per step, from inside the loop
    assert client.get_metric_history(run_id, "val_loss")
    artifacts = {a.path for a in client.list_artifacts(run_id, "teacher")}
    assert {"teacher/teacher_samples.mp4", "teacher/teacher_training_curves.png"} <= artifacts
    assert client.list_artifacts(run_id, "samples/teacher")  # samples during training


def test_a_longer_teacher_run_resumes_from_the_last_checkpoint(
    trained_project, tmp_path, monkeypatch, caplog
):
    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    use_project(project, monkeypatch, mlflow.get_tracking_uri())
    with caplog.at_level("INFO"):
        run_kedro(project, pipeline="teacher", params={"teacher": {"training": {"steps": 40}}})
    assert "teacher: resumed from checkpoint-0000030 at step 30 of 40" in caplog.text
    assert _json(project, "teacher.json")["teacher_train_steps"] == 40


@pytest.mark.parametrize(("model", "steps"), [("teacher", "2"), ("student2", "1")])
def test_generate_writes_a_video_from_an_image(trained_project: Path, tmp_path: Path, model: str, steps: str):
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out.mp4"
    args = ["--image", str(image), "--motion", "2.0", "--steps", steps, "--out", str(out)]
    result = _mobilei2v(trained_project, "generate", *args, "--model", model, "--env", "smoke")
    assert result.returncode == 0, result.stderr
    assert f"{steps} steps of the {model}" in result.stdout
    info = probe_video(out)
    assert (info.num_frames, info.height, info.width) == (9, 64, 112)


def test_generate_explains_what_is_wrong(trained_project: Path, tmp_path: Path):
    out = str(tmp_path / "out.mp4")
    missing = _mobilei2v(trained_project, "generate", "--image", "nope.png", "--out", out, "--env", "smoke")
    assert missing.returncode == 1 and "image nope.png: no such file" in missing.stderr
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    unreadable = _mobilei2v(trained_project, "generate", "--image", str(text), "--out", out, "--env", "smoke")
    assert unreadable.returncode == 1 and "not a readable image" in unreadable.stderr
    untrained = copy_project(tmp_path / "untrained")
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 64)).save(image)
    never = _mobilei2v(untrained, "generate", "--image", str(image), "--out", out, "--env", "smoke")
    assert never.returncode == 1 and "no trained teacher" in never.stderr and "Traceback" not in never.stderr


def test_model_card_of_the_paper_preset():
    script = Path(sys.executable).parent / "mobilei2v"
    result = subprocess.run(
        [str(script), "model-card", "--preset", "paper", "--json"], capture_output=True, text=True
    )
    card = json.loads(result.stdout)
    assert card["tokens"] == 2760 and card["latent_shape"] == [128, 3, 23, 40]
    assert 263.6e6 <= card["params"] <= 266.2e6


def test_accelerate_launch_trains_a_stage_on_two_processes_and_saves_once(trained_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    shutil.rmtree(project / "data/06_models/teacher")
    accelerate = Path(sys.executable).parent / "accelerate"
    result = subprocess.run(
        [
            str(accelerate),
            "launch",
            "--cpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "mobilei2v_pipeline",
            "train",
            "teacher",
            "--env",
            "smoke",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained teacher; saved teacher_model, teacher_training_history") == 1
    assert load_denoiser(torch.load(project / "data/06_models/teacher/teacher.pt", weights_only=True))


def test_a_pretrained_vae_is_loaded_and_training_skipped(tmp_path: Path):
    from mobilei2v_pipeline.models.autoencoder import build_vae
    from mobilei2v_pipeline.pipelines.autoencoder.nodes import train_autoencoder

    saved = build_vae("micro")
    saved.save_pretrained(tmp_path / "vae")
    params = {"pretrained_path": str(tmp_path / "vae"), "vae": "tiny", "training": {"steps": 10**9}}
    vae, history = train_autoencoder(pd.DataFrame(), {}, tmp_path / "unused", params)
    assert history.empty
    for (name, loaded), original in zip(vae.state_dict().items(), saved.state_dict().values(), strict=True):
        assert torch.equal(loaded, original), name


def _public_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our denoiser's weights under the public MobileI2V code's names and shapes, with its unused text path
    and position buffers, as its checkpoints hold them."""
    renames = [
        (r"^patch_embed\.", "x_embedder.proj."),
        (r"^timestep_embedder\.mlp\.", "t_embedder.mlp."),
        (r"^timestep_embedder\.modulation\.", "t_block."),
        (r"^motion_embedder\.mlp\.", "flow_embedder.mlp."),
        (r"^motion_embedder\.modulation\.", "flow_block."),
        (r"^blocks\.(\d+)\.ffn\.(\w+)\.", r"blocks.\1.mlp.\2.conv."),
    ]
    public = {}
    for key, value in state_dict.items():
        for pattern, replacement in renames:
            key = re.sub(pattern, replacement, key)
        public[key] = value[:, :, None, None] if key == "x_embedder.proj.weight" else value
    return public | {"y_embedder.y_proj.fc1.weight": torch.zeros(4, 8), "pos_embed": torch.zeros(1, 28, 4)}


def test_the_teacher_stage_imports_a_public_checkpoint(trained_project, tmp_path, monkeypatch, caplog):
    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    use_project(project, monkeypatch, mlflow.get_tracking_uri())
    trained = torch.load(project / "data/06_models/teacher/teacher.pt", weights_only=True)
    folder = project / "data/01_raw/pretrained/mobilei2v"
    folder.mkdir(parents=True)
    torch.save({"state_dict": _public_names(trained["state_dict"]), "epoch": 1}, folder / "public.pth")
    params = {"teacher": {"pretrained_path": str(folder)}}
    with caplog.at_level("INFO"):
        run_kedro(project, pipeline="teacher", params=params)
    assert "Importing the public MobileI2V checkpoint" in caplog.text and "training skipped" in caplog.text
    metrics = _json(project, "teacher.json")
    assert metrics["teacher_pretrained"] == 1 and metrics["teacher_train_steps"] == 0
    imported = torch.load(project / "data/06_models/teacher/teacher.pt", weights_only=True)
    for key, value in trained["state_dict"].items():
        assert torch.equal(imported["state_dict"][key], value), key
