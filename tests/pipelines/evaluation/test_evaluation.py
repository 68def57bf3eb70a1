"""The evaluation of the smoke run: its rows, its figures for DVC and MLflow, and determinism."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import run_kedro, use_project

from mobilei2v_pipeline.datasets.video_file import VideoFileDataset
from mobilei2v_pipeline.pipelines.evaluation.nodes import (
    LABEL_HEIGHT,
    HeldOutExamples,
    model_rows,
    motion_gifs,
)

REPORTS = Path("data/08_reporting")
MEASURED = REPORTS / "measured"
CONTRACT = [
    "teacher_1step_psnr_vs_teacher",
    "teacher_2step_psnr_vs_teacher",
    "student1_2step_psnr_vs_teacher",
    "student2_1step_psnr_vs_teacher",
    "student1_2step_psnr_gain_db",
    "student2_1step_psnr_gain_db",
]
MEASURED_CONTRACT = [
    "speedup_teacher_vs_student2_1step",
    "light_speedup_teacher_vs_student2_1step",
    "denoiser_speedup_teacher_vs_student2_1step",
    "student2_1step_latency_ms",
]


def test_rows_are_every_model_at_its_steps_beside_the_teacher_at_n():
    rows = model_rows(
        {"teacher_steps": [1, 2, 4], "student1_steps": [2, 1], "student2_steps": [1, 2]}, teacher_steps=20
    )
    assert rows == [
        ("teacher", 1),
        ("teacher", 2),
        ("teacher", 4),
        ("teacher", 20),
        ("student1", 2),
        ("student1", 1),
        ("student2", 1),
        ("student2", 2),
    ]


def test_motion_gifs_put_motions_left_to_right_and_rows_top_to_bottom():
    # 2 clips x 2 motions x 2 seeds; each video is filled with a code for its row and example.
    table = pd.DataFrame(
        [
            {"clip_id": f"clip{c}", "clip_number": c, "motion": m, "seed": s}
            for c in range(2)
            for m in (1.0, 4.0)
            for s in (0, 1)
        ]
    )
    codes = {"teacher_4step": 0, "student2_1step": 100}
    loaded = []

    def video(name: str, i: int) -> np.ndarray:
        loaded.append((name, i))
        return np.full((2, 3, 8, 40, 3), codes[name] + i, np.uint8)

    videos = {f"{name}/{i:04d}": partial(video, name, i) for name in codes for i in range(len(table))}
    evaluation = {"motion_gif_rows": ["teacher_{N}step", "student2_1step"], "seeds": [1, 0]}
    gifs = motion_gifs(videos, HeldOutExamples(table, np.empty(0), np.empty(0)), {"steps": 4}, evaluation)
    assert list(gifs) == ["clip0", "clip1"] and not loaded  # made when saved
    gif = gifs["clip1"]()
    assert gif.shape == (3, 2 * (LABEL_HEIGHT + 8), 2 * 40, 3)
    # clip1 at seed 1 is examples 5 (motion 1) and 7 (motion 4); the student's band is below the teacher's.
    assert [gif[0, LABEL_HEIGHT, 0, 0], gif[0, LABEL_HEIGHT, 40, 0]] == [5, 7]
    assert [gif[0, 2 * LABEL_HEIGHT + 8, 0, 0], gif[0, 2 * LABEL_HEIGHT + 8, 40, 0]] == [105, 107]


def test_every_rows_video_of_every_example_is_on_disk(trained_project: Path):
    videos = sorted((trained_project / "data/07_model_output/evaluation_videos").rglob("*.npy"))
    rows = {path.parent.name for path in videos}
    assert len(rows) == 7 and len(videos) == 7 * 2  # smoke: 7 rows x 2 examples
    assert np.load(videos[0]).shape == (2, 9, 64, 112, 3)  # the VAE's and the light decoder's video


def test_the_evaluation_table_and_its_figures(trained_project: Path):
    table = pd.read_csv(trained_project / REPORTS / "evaluation_table.csv")
    # smoke: the teacher samples in 4 steps, so its rows are 1, 2 and 4 (= N).
    assert table["row"].tolist() == [
        "teacher_1step",
        "teacher_2step",
        "teacher_4step",
        "student1_2step",
        "student1_1step",
        "student2_1step",
        "student2_2step",
    ]
    rows = table.set_index("row")
    assert rows.loc["teacher_4step", "psnr_vs_teacher"] == float("inf")
    assert table["fvd_note"].str.startswith("skipped: no local I3D").all()
    assert np.isfinite(table["motion_rel_error"]).all() and (table["motion_rel_error"] >= 0).all()
    assert not [c for c in table.columns if c.endswith("_ms") or "speedup" in c]

    metrics = json.loads((trained_project / REPORTS / "evaluation.json").read_text())
    assert set(CONTRACT) <= set(metrics)
    gain = rows.loc["student2_1step", "psnr_vs_teacher"] - rows.loc["teacher_1step", "psnr_vs_teacher"]
    assert metrics["student2_1step_psnr_gain_db"] == pytest.approx(gain, rel=1e-5)
    assert {f"{row}_motion_rel_error" for row in table["row"]} <= set(metrics)
    assert "teacher_4step_psnr_vs_teacher" not in metrics  # the reference's agreement with itself
    # One side-by-side grid per held-out example (smoke: 1 clip x 2 motions x 1 seed).
    grids = sorted((trained_project / REPORTS / "evaluation_grids").glob("*.gif"))
    assert len(grids) == 2
    # One motion GIF per held-out image (smoke: 1 clip): 2 motion panels side by side, in 2 bands.
    (gif,) = (trained_project / REPORTS / "evaluation_motion_gifs").glob("*.gif")
    grid = VideoFileDataset(str(grids[0])).load()
    width = grid.shape[2] // 5  # a grid is the input image beside 4 rows
    assert VideoFileDataset(str(gif)).load().shape[1:] == (2 * (LABEL_HEIGHT + grid.shape[1]), 2 * width, 3)
    assert (trained_project / MEASURED / "evaluation_quality_latency.png").stat().st_size > 0


def test_the_latency_table_and_its_figures(trained_project: Path):
    table = pd.read_csv(trained_project / MEASURED / "evaluation_latency.csv")
    rows = table.set_index("row")
    assert rows.loc["teacher_4step", "speedup_vs_teacher"] == 1 and (table["latency_ms"] > 0).all()
    # The CSV keeps 6 significant digits: the parts add up to the total within that rounding.
    parts = table["encoder_ms"] + table["denoiser_ms"] + table["decoder_ms"]
    assert np.allclose(parts, table["latency_ms"], rtol=1e-5)
    light = table["light_encoder_ms"] + table["denoiser_ms"] + table["light_decoder_ms"]
    assert np.allclose(light, table["light_latency_ms"], rtol=1e-5)
    figures = json.loads((trained_project / MEASURED / "evaluation.json").read_text())
    assert set(MEASURED_CONTRACT) <= set(figures)
    assert figures["speedup_teacher_vs_student2_1step"] == rows.loc["student2_1step", "speedup_vs_teacher"]
    ratio = rows.loc["teacher_4step", "denoiser_ms"] / rows.loc["student2_1step", "denoiser_ms"]
    assert figures["denoiser_speedup_teacher_vs_student2_1step"] == pytest.approx(ratio, rel=1e-4)


def test_the_evaluation_reaches_mlflow(trained_project: Path, tracking_uri: str):
    client = mlflow.MlflowClient(tracking_uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "metrics.speedup_teacher_vs_student2_1step > 0",
    )
    assert runs
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "evaluation")}
    assert {
        "evaluation/evaluation_table.csv",
        "evaluation/evaluation_latency.csv",
        "evaluation/evaluation_quality_latency.png",
        "evaluation/grids",
        "evaluation/motion_gifs",
    } <= artifacts


def test_the_same_seeds_give_the_same_quality_figures(
    trained_project: Path, tmp_path: Path, monkeypatch, tracking_uri: str
):
    project = shutil.copytree(trained_project, tmp_path / "project")
    use_project(project, monkeypatch, tracking_uri)
    run_kedro(project, pipeline="evaluation")
    for name in ("evaluation.json", "evaluation_table.csv"):
        assert (project / REPORTS / name).read_bytes() == (trained_project / REPORTS / name).read_bytes()
