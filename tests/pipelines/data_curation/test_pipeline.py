"""The data_curation pipeline run end to end on the smoke env, in a throw-away copy of the project."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from broken_videos import write_broken_videos
from conftest import kedro_cli, run_kedro

from mobilei2v_pipeline.datasets.video_record import CuratedClipsDataset
from mobilei2v_pipeline.errors import ValidationFailedError
from mobilei2v_pipeline.video.synthetic import plan_synthetic_videos, synthetic_video_bytes

REPORTS = Path("data/08_reporting")


def _metrics(project: Path) -> dict:
    return json.loads((project / REPORTS / "data_curation.json").read_text())


def _last_run():
    runs = mlflow.search_runs(experiment_names=["mobilei2v"], order_by=["start_time DESC"], max_results=1)
    return mlflow.get_run(runs["run_id"][0])


def _write_good_videos(folder: Path, count: int) -> None:
    specs = plan_synthetic_videos(11, count, 160, 96, 12, 2.0, 0.5, 3.0, 2, rejects={})
    for spec in specs:
        (folder / f"clip_source_{spec.name}.mp4").write_bytes(
            synthetic_video_bytes(spec, crf=23, preset="veryfast")
        )


def test_smoke_run_curates_synthetic_videos_and_tracks_the_run(project: Path):
    run_kedro(project, pipeline="data_curation")

    metrics = _metrics(project)
    table = pd.read_parquet(project / "data/03_primary/clip_table.parquet")
    assert metrics["validation_success"] == 1 and metrics["videos_quarantined"] == 0
    assert metrics["clips_total"] == metrics["clips_kept"] + metrics["clips_rejected"]
    assert metrics["clips_kept"] == len(table) > 0
    assert set(table["split"]) == {"train", "val"}
    # The synthetic rejects are rejected for the right reasons.
    rejected = pd.read_csv(project / REPORTS / "rejected_clips.csv")
    reasons = dict(zip(rejected["video_id"], rejected["reason"], strict=True))
    assert any("dark" in video and "too dark" in reason for video, reason in reasons.items())
    assert any("static" in video and "static" in reason for video, reason in reasons.items())
    assert not any("normal" in video for video in reasons)
    # One record per source video; frames of exactly the published clips, in the configured shape.
    records = sorted((project / "data/03_primary/curated_clips/synthetic").glob("*.safetensors"))
    assert len(records) == metrics["videos_total"]
    frames = CuratedClipsDataset("data/03_primary/curated_clips").load()
    assert sorted(frames) == sorted(table["clip_id"])
    assert frames[table["clip_id"][0]]().shape == (9, 64, 112, 3)
    assert len(list((project / REPORTS / "clip_previews").glob("*.gif"))) == 2
    assert json.loads((project / REPORTS / "clip_validation.json").read_text())["success"] is True

    run = _last_run()
    assert run.info.status == "FINISHED"
    assert {"git_commit", "git_dirty", "data_version", "kedro_env", "seed"} <= set(run.data.tags)
    assert run.data.tags["kedro_env"] == "smoke" and run.data.tags["data_version"].startswith("synthetic-")
    assert run.data.metrics["clips_kept"] == metrics["clips_kept"]
    assert run.data.params["curation.clips.frames_per_clip"] == "9"
    client = mlflow.MlflowClient()
    reports = [a.path for a in client.list_artifacts(run.info.run_id, "reports")]
    assert reports == ["reports/data_curation.json"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "data_curation")}
    assert {
        "data_curation/curation_contact_sheet.png",
        "data_curation/clip_validation.html",
        "data_curation/video_quarantine.csv",
        "data_curation/previews",
    } <= artifacts


def test_user_videos_replace_synthetic_ones_and_broken_files_are_quarantined(project: Path):
    raw = project / "data/01_raw/videos"
    expected = write_broken_videos(raw)
    _write_good_videos(raw, 6)

    run_kedro(project, pipeline="data_curation")

    quarantine = pd.read_csv(project / REPORTS / "video_quarantine.csv")
    assert dict(zip(quarantine["video_id"], quarantine["reason"], strict=True)) == {
        f"user/{name}": reason for name, reason in expected.items()
    }
    metrics = _metrics(project)
    assert metrics["videos_total"] == 16 and metrics["videos_quarantined"] == 10
    assert metrics["quarantined_unreadable_container"] == 4
    assert metrics["clips_kept"] > 0
    assert not any((project / "data/01_raw/synthetic").glob("*.mp4"))
    table = pd.read_parquet(project / "data/03_primary/clip_table.parquet")
    assert table["video_id"].str.startswith("user/clip_source_").all()
    assert _last_run().data.tags["data_version"].startswith("raw-")


def test_a_folder_of_only_broken_files_stops_with_a_clear_message(project: Path):
    write_broken_videos(project / "data/01_raw/videos")

    result = kedro_cli(project, "run")

    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "no usable clips" in output and "video_quarantine" in output
    assert "Traceback" not in output
    assert len(pd.read_csv(project / REPORTS / "video_quarantine.csv")) == 10


def test_failed_validation_stops_the_run_and_leaves_the_report(project: Path):
    with pytest.raises(ValidationFailedError, match=r"expect_column_values_to_be_between\(split_clips\)"):
        run_kedro(
            project, pipeline="data_curation", params={"clip_validation": {"min_clips_per_split": 1000}}
        )

    report = json.loads((project / REPORTS / "clip_validation.json").read_text())
    assert report["success"] is False
    assert [f["column"] for f in report["failed"]] == ["split_clips"]
    assert _metrics(project)["validation_success"] == 0
    assert (project / REPORTS / "clip_validation.html").exists()
    assert not (project / "data/03_primary/clip_table.parquet").exists()
    assert _last_run().info.status == "FAILED"


def test_two_videos_all_in_train_stop_the_run_saying_what_to_do(project: Path):
    _write_good_videos(project / "data/01_raw/videos", 2)  # both hash into train at val_fraction 0.25

    result = kedro_cli(project, "run", "--pipelines", "data_curation")

    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert (
        "no val clips: 2 videos gave 4 clips, all in train; add videos or raise curation.split.val_fraction"
        in output
    )
    report = json.loads((project / REPORTS / "clip_validation.json").read_text())
    assert report["success"] is False
    assert "expect_column_distinct_values_to_contain_set" in [f["expectation"] for f in report["failed"]]
    assert not (project / "data/03_primary/clip_table.parquet").exists()


def test_phone_footage_is_curated_upright_whole_and_without_leakage(project: Path):
    from phone_videos import write_copies, write_phone_videos

    from mobilei2v_pipeline.video.synthetic import render_frames

    raw = project / "data/01_raw/videos"
    write_phone_videos(raw)
    [spec] = plan_synthetic_videos(11, 1, 160, 96, 12, 3.0, 2.0, 2.0, 2, rejects={})
    write_copies(raw / "copies", list(render_frames(spec)))
    _write_good_videos(raw, 4)

    run_kedro(project, pipeline="data_curation", params={"curation": {"split": {"val_fraction": 0.5}}})

    metrics = _metrics(project)
    assert metrics["videos_quarantined"] == 0 and metrics["near_duplicate_groups"] == 1
    assert metrics["near_duplicate_videos"] == 3
    table = pd.read_parquet(project / "data/03_primary/clip_table.parquet")
    rotation = table.groupby("video_id")["rotation"].first()
    assert rotation["user/portrait.mp4"] == 90 and rotation["user/upside_down.mp4"] == 180
    assert table.loc[table["video_id"] == "user/vfr.mp4", "max_gap_ms"].max() == pytest.approx(250)
    copies = table[table["video_id"].str.startswith("user/copies/")]
    assert copies["video_id"].nunique() == 3 and copies["split"].nunique() == 1
    assert set(copies["duplicate_group"]) == {"user/copies/original.mp4"}
