"""The `mobilei2v` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mobilei2v_pipeline import __version__
from mobilei2v_pipeline.cli import main
from mobilei2v_pipeline.video.decode import probe_video


def test_console_script_is_installed_and_reports_its_version():
    script = Path(sys.executable).parent / "mobilei2v"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and __version__ in result.stdout


def test_synthesize_writes_playable_videos(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["synthesize", "--out", str(tmp_path), "--num-videos", "2", "--seconds", "1", "--width", "96"]
    )
    assert result.exit_code == 0, result.output
    videos = sorted(tmp_path.glob("*.mp4"))
    assert len(videos) == 2
    info = probe_video(videos[0])
    assert (info.width, info.height, info.num_frames) == (96, 180, 24)


def test_import_checkpoint_writes_a_denoiser_file_of_the_public_weights(tmp_path: Path):
    import torch
    from reference.make_upstream_reference import load_fixture

    from mobilei2v_pipeline.models.i2v import load_denoiser

    source = tmp_path / "public" / "mobilei2v.pth"
    source.parent.mkdir()
    reference = load_fixture()
    torch.save({"state_dict": reference["state_dict"]}, source)
    out = tmp_path / "teacher.pt"
    result = CliRunner().invoke(main, ["import-checkpoint", str(source.parent), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "hidden 144, 16 blocks LLLLLLLSLLLLLLLS, 2 heads, 8-channel latents" in result.output
    model = load_denoiser(torch.load(out, map_location="cpu", weights_only=True))
    inputs = reference["inputs"]
    timesteps = (inputs["timestep"] / 1000).unsqueeze(1).repeat(1, 3)
    timesteps[:, 0] = 0
    with torch.no_grad():
        out_video = model(inputs["latents"], timesteps, inputs["flow_score"])
    assert (out_video - reference["output"]).abs().max() <= 1e-4


def test_import_checkpoint_names_what_is_wrong(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("no checkpoint here")
    result = CliRunner().invoke(main, ["import-checkpoint", str(tmp_path), "--out", str(tmp_path / "t.pt")])
    assert result.exit_code == 1
    assert f"{tmp_path} holds no checkpoint file" in result.output
    assert not (tmp_path / "t.pt").exists()


def test_figures_prints_the_readme_tables_and_writes_the_strip(tmp_path: Path, monkeypatch):
    import json

    import numpy as np
    import pandas as pd
    from PIL import Image

    from mobilei2v_pipeline.report_figures import AUTOENCODER_FIGURES, EVALUATION_COLUMNS, LATENCY_COLUMNS

    reports = tmp_path / "data/08_reporting"
    (reports / "evaluation_motion_gifs").mkdir(parents=True)
    (reports / "measured").mkdir()
    (reports / "autoencoder.json").write_text(json.dumps(dict.fromkeys(AUTOENCODER_FIGURES, 21.5)))
    names = {"row": ["teacher_20step", "student2_1step"]}
    rows = {column: [1.25, 2.5] for column in EVALUATION_COLUMNS} | names
    pd.DataFrame(rows).to_csv(reports / "evaluation_table.csv", index=False)
    rows = {column: [40.0, 3.5] for column in LATENCY_COLUMNS} | names
    pd.DataFrame(rows).to_csv(reports / "measured/evaluation_latency.csv", index=False)
    frames = [Image.fromarray(np.full((16, 24, 3), 40 * i, np.uint8)) for i in range(5)]
    frames[0].save(reports / "evaluation_motion_gifs/a.gif", save_all=True, append_images=frames[1:])
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["figures", "--strip", "docs/strip.gif"])
    assert result.exit_code == 0, result.output
    assert "| vae_val_motion_ratio | 21.5 |" in result.output
    assert "| student2_1step | 2.5 |" in result.output
    assert "| student2_1step | 3.5 |" in result.output  # its latency, from the measured folder
    with Image.open(tmp_path / "docs/strip.gif") as strip:
        assert strip.n_frames == 5 and strip.size == (24, 16)


def test_figures_before_a_run_says_to_run_first(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["figures"])
    assert result.exit_code != 0 and "make run" in result.output


def test_generate_refuses_fewer_than_one_step(tmp_path: Path):
    result = CliRunner().invoke(
        main, ["generate", "--image", "photo.jpg", "--steps", "0", "--out", str(tmp_path / "out.mp4")]
    )
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("motion", ["-5", "1e9"])
def test_generate_refuses_a_motion_outside_the_trained_range(project: Path, tmp_path: Path, motion: str):
    import pandas as pd
    from PIL import Image

    clips = pd.DataFrame({"split": ["train", "train", "val"], "motion_score": [0.5, 4.0, 9.0]})
    clips.to_parquet(project / "data/03_primary/clip_table.parquet")
    (project / "data/06_models/teacher").mkdir(parents=True)
    (project / "data/06_models/teacher/teacher.pt").write_bytes(b"a trained teacher is not needed")
    Image.new("RGB", (64, 64)).save(tmp_path / "photo.png")
    args = ["generate", "--image", str(tmp_path / "photo.png"), "--motion", motion, "--out", "out.mp4"]

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 1
    assert (
        f"--motion {float(motion):g} is outside the range the teacher was trained on: 0.50 to 4.00 "
        "(the motion scores of the train clips in the clip table)" in result.output
    )


def test_generate_reads_a_photo_upright_by_its_exif_orientation(tmp_path: Path):
    import numpy as np
    from PIL import Image

    from mobilei2v_pipeline.generate import read_image

    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:, :10] = 255  # a white band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show": a phone held upright
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=95)

    image = read_image(tmp_path / "photo.jpg")

    assert image.shape == (60, 40, 3)  # portrait, as a photo viewer shows it
    assert image[:10].mean() > 200 and image[-40:].mean() < 30  # the band is now at the top
