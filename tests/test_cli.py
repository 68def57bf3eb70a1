"""The `mobilei2v` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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

    from mobilei2v_pipeline.report_figures import AUTOENCODER_FIGURES, EVALUATION_COLUMNS

    reports = tmp_path / "data/08_reporting"
    (reports / "evaluation_motion_gifs").mkdir(parents=True)
    (reports / "autoencoder.json").write_text(json.dumps(dict.fromkeys(AUTOENCODER_FIGURES, 21.5)))
    rows = {column: [1.25, 2.5] for column in EVALUATION_COLUMNS} | {
        "row": ["teacher_20step", "student2_1step"]
    }
    pd.DataFrame(rows).to_csv(reports / "evaluation_table.csv", index=False)
    frames = [Image.fromarray(np.full((16, 24, 3), 40 * i, np.uint8)) for i in range(5)]
    frames[0].save(reports / "evaluation_motion_gifs/a.gif", save_all=True, append_images=frames[1:])
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["figures", "--strip", "docs/strip.gif"])
    assert result.exit_code == 0, result.output
    assert "| vae_val_motion_ratio | 21.5 |" in result.output
    assert "| student2_1step | 2.5 |" in result.output
    with Image.open(tmp_path / "docs/strip.gif") as strip:
        assert strip.n_frames == 5 and strip.size == (24, 16)


def test_figures_before_a_run_says_to_run_first(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["figures"])
    assert result.exit_code != 0 and "make run" in result.output
