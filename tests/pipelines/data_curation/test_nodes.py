"""One test per data_curation node, with the negative cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobilei2v_pipeline.errors import NoUsableClipsError, ValidationFailedError
from mobilei2v_pipeline.pipelines.data_curation import nodes
from mobilei2v_pipeline.pipelines.data_curation.video_curation import (
    THUMBNAIL_WIDTH,
    rejection_reasons,
    shrink,
)
from mobilei2v_pipeline.video.record import VideoRecord
from mobilei2v_pipeline.video.synthetic import synthetic_video_bytes

CLIPS = {"frames_per_clip": 9, "frame_interval": 1, "clips_per_video": 2, "height": 64, "width": 112}
FILTERS = {
    "min_brightness": 20,
    "max_brightness": 235,
    "min_contrast": 8,
    "min_sharpness": 10,
    "min_motion": 0.1,
    "max_motion": 40,
    "min_scene_cut_score": 0.5,
    "max_frame_gap_ms": 300,
}
RAY = {"address": None, "num_cpus_per_task": 1, "runtime_env": None}
CURATION = {
    "clips": CLIPS,
    "min_short_side": 64,
    "motion_reference_short_side": 256,
    "filters": FILTERS,
    "engine": "local",
    "workers": 1,
    "ray": RAY,
}
VALIDATION = {"min_clips_per_split": 1, "ranges": {"motion_score": [0, 40], "source_fps": [1, 240]}}
SYNTHETIC = {
    "seed": 3,
    "num_videos": 3,
    "width": 160,
    "height": 96,
    "fps": 12,
    "seconds": 1.0,
    "min_speed": 0.5,
    "max_speed": 2.0,
    "num_sprites": 2,
    "rejects": {"static": 1},
    "crf": 23,
    "preset": "veryfast",
    "keyint": 12,
}


def _clip_table(n: int = 6) -> pd.DataFrame:
    """A valid clip table of n clips from n videos, both splits present."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "clip_id": f"clip-{i}",
                "video_id": f"user/video_{i}.mp4",
                "split": "val" if i % 3 == 0 else "train",
                "start_frame": 0,
                "start_time_s": 0.0,
                "rotation": 0,
                "effective_fps": 24.0,
                "max_gap_ms": 41.7,
                "duplicate_group": f"user/video_{i}.mp4",
                "frames": 9,
                "frame_interval": 1,
                "height": 64,
                "width": 112,
                "source_fps": 24.0,
                "source_width": 160,
                "source_height": 96,
                "source_num_frames": 48,
                "source_duration_s": 2.0,
                "source_codec": "h264",
                "motion_score": 1.0 + i,
                "sharpness": 100.0,
                "brightness": 120.0,
                "contrast": 40.0,
                "scene_cut_score": 0.99,
            }
        )
    return pd.DataFrame(rows)


def test_synthesize_makes_videos_only_without_user_videos(tmp_path: Path):
    made = nodes.synthesize_raw_videos({}, SYNTHETIC)
    assert sorted(made) == [
        "synthetic_000_normal.mp4",
        "synthetic_001_normal.mp4",
        "synthetic_002_static.mp4",
    ]
    assert made["synthetic_000_normal.mp4"]()[4:8] == b"ftyp"  # an MP4, made lazily
    assert nodes.synthesize_raw_videos({"mine.mp4": tmp_path / "mine.mp4"}, SYNTHETIC) == {}


def test_select_source_videos_prefers_user_videos(tmp_path: Path):
    user, synthetic = {"a.mp4": tmp_path / "a.mp4"}, {"s.mp4": tmp_path / "s.mp4"}
    assert nodes.select_source_videos(user, synthetic) == {"user/a.mp4": tmp_path / "a.mp4"}
    assert nodes.select_source_videos({}, synthetic) == {"synthetic/s.mp4": tmp_path / "s.mp4"}


def _curate(sources: dict[str, Path], **curation) -> dict[str, VideoRecord]:
    """Every record curate_videos makes, in the order the records dataset saves them."""
    made = nodes.curate_videos(sources, {**CURATION, **curation})
    return {video_id: made[video_id]() for video_id in sorted(made)}


def _lazy(records: dict[str, VideoRecord]) -> dict:
    """Records as the records dataset loads them: by video id, each made when called."""
    return {video_id: (lambda record=record: record) for video_id, record in records.items()}


def test_curate_videos_cuts_good_videos_and_quarantines_broken_ones(tmp_path: Path):
    from broken_videos import write_broken_videos

    expected = write_broken_videos(tmp_path / "broken")
    made = nodes.synthesize_raw_videos({}, SYNTHETIC)
    (tmp_path / "good.mp4").write_bytes(made["synthetic_000_normal.mp4"]())
    sources = {f"user/{name}": tmp_path / "broken" / name for name in expected}
    sources["user/good.mp4"] = tmp_path / "good.mp4"

    records = _curate(sources)
    scores, quarantine = nodes.collect_clips(_lazy(records))

    assert dict(zip(quarantine["video_id"], quarantine["reason"], strict=True)) == {
        f"user/{name}": reason for name, reason in expected.items()
    }
    assert (quarantine["detail"].str.len() > 10).all()
    assert set(scores["video_id"]) == {"user/good.mp4"}
    assert len(scores) == 1  # a 12-frame video holds one 9-frame clip
    good = records["user/good.mp4"]
    [clip] = scores["clip_id"]
    assert good.frames[clip].shape == (9, 64, 112, 3) and good.thumbnails[clip].shape == (64, 112, 3)
    assert len(good.hashes[clip]) == 9 and scores.loc[0, "reason"] == ""
    for column in ("motion_score", "sharpness", "brightness", "contrast", "scene_cut_score"):
        assert np.isfinite(scores.loc[0, column])


def test_a_clip_the_filters_reject_keeps_every_reason_and_no_frames():
    row = _clip_table(1).iloc[0].to_dict()
    assert rejection_reasons(row, FILTERS) == ""
    assert rejection_reasons({**row, "brightness": 5.0, "contrast": 2.0}, FILTERS) == "too dark; low contrast"
    table = _clip_table(3).assign(reason=["", "too dark; low contrast", "static"])
    kept, rejected = nodes.filter_clips(table)
    assert list(kept["clip_id"]) == ["clip-0"] and "reason" not in kept
    assert dict(zip(rejected["clip_id"], rejected["reason"], strict=True)) == {
        "clip-1": "too dark; low contrast",
        "clip-2": "static",
    }


def test_a_static_video_is_scored_and_rejected_and_its_frames_are_not_kept(tmp_path: Path):
    made = nodes.synthesize_raw_videos({}, SYNTHETIC)
    (tmp_path / "static.mp4").write_bytes(made["synthetic_002_static.mp4"]())
    [record] = _curate({"user/static.mp4": tmp_path / "static.mp4"}).values()
    assert [row["reason"] for row in record.rows] == ["static"] and not record.frames
    assert list(record.thumbnails) == [record.rows[0]["clip_id"]]  # still on the contact sheet


def test_filter_clips_on_no_clips_gives_empty_tables():
    kept, rejected = nodes.filter_clips(pd.DataFrame())
    assert kept.empty and rejected.empty


def test_assign_splits_is_by_video_and_stable_when_videos_are_added():
    split = {"val_fraction": 0.3, "salt": "s"}
    table = _clip_table(40).drop(columns="split")
    first = nodes.assign_splits(table, pd.DataFrame(), pd.DataFrame(), split)
    more = pd.concat([table, _clip_table(60).drop(columns="split").iloc[40:]], ignore_index=True)
    second = nodes.assign_splits(more, pd.DataFrame(), pd.DataFrame(), split)
    assert set(first["split"]) == {"train", "val"}
    assert 0.1 < (first["split"] == "val").mean() < 0.5
    pd.testing.assert_series_equal(first["split"], second["split"].iloc[:40])
    # Two clips of one video always share a split.
    twins = pd.concat([table.iloc[:1], table.iloc[:1].assign(clip_id="twin")], ignore_index=True)
    assert nodes.assign_splits(twins, pd.DataFrame(), pd.DataFrame(), split)["split"].nunique() == 1


def test_assign_splits_without_clips_stops_with_the_reasons():
    quarantine = pd.DataFrame({"reason": ["empty_file", "empty_file", "too_small"]})
    rejected = pd.DataFrame({"reason": ["static"]})
    with pytest.raises(NoUsableClipsError, match="no usable clips") as error:
        nodes.assign_splits(pd.DataFrame(), rejected, quarantine, {"val_fraction": 0.2, "salt": "s"})
    message = error.value.message
    assert "3 video(s) quarantined (2 empty_file, 1 too_small)" in message
    assert "1 clip(s) rejected (1 static)" in message and "video_quarantine" in message


def test_validate_clip_table_passes_a_good_table():
    summary, html = nodes.validate_clip_table(_clip_table(), VALIDATION, CURATION)
    assert summary["success"] and summary["failed"] == []
    assert summary["statistics"]["evaluated_expectations"] > 40
    assert "<html" in html.lower()


@pytest.mark.parametrize(
    ("break_table", "expectation", "column"),
    [
        (lambda t: t.assign(clip_id="same"), "expect_column_values_to_be_unique", "clip_id"),
        (
            lambda t: t.assign(motion_score=t["motion_score"] + 100),
            "expect_column_values_to_be_between",
            "motion_score",
        ),
        (lambda t: t.assign(split="train"), "expect_column_distinct_values_to_contain_set", "split"),
        (lambda t: t.drop(columns="sharpness"), "expect_table_columns_to_match_set", None),
        (lambda t: t.assign(source_codec=None), "expect_column_values_to_not_be_null", "source_codec"),
        (lambda t: t.assign(frames=17), "expect_column_values_to_be_between", "frames"),
    ],
)
def test_validate_clip_table_names_what_failed(break_table, expectation, column):
    summary, _ = nodes.validate_clip_table(break_table(_clip_table()), VALIDATION, CURATION)
    assert not summary["success"]
    assert {"expectation": expectation, "column": column} in [
        {"expectation": f["expectation"], "column": f["column"]} for f in summary["failed"]
    ]


def test_publish_clip_table_stops_on_failed_validation():
    table = _clip_table()
    summary, _ = nodes.validate_clip_table(table.assign(split="train"), VALIDATION, CURATION)
    with pytest.raises(ValidationFailedError, match="expect_column_distinct_values_to_contain_set"):
        nodes.publish_clip_table(table, summary, {"videos_quarantined": 0})
    good, _ = nodes.validate_clip_table(table, VALIDATION, CURATION)
    assert nodes.publish_clip_table(table, good, {"videos_quarantined": 0}) is table


def test_summarize_curation_counts_everything():
    table = _clip_table()
    quarantine = pd.DataFrame({"reason": ["empty_file", "too_small", "empty_file"]})
    rejected = pd.DataFrame({"clip_id": ["x", "y"], "reason": ["static", "too dark; low contrast"]})
    metrics = nodes.summarize_curation(
        {f"v{i}": Path() for i in range(9)},
        quarantine,
        pd.concat([table, rejected]),
        rejected,
        table,
        {"success": True, "failed": []},
    )
    assert metrics["videos_total"] == 9 and metrics["videos_quarantined"] == 3
    assert metrics["clips_total"] == 8 and metrics["clips_kept"] == 6 and metrics["clips_rejected"] == 2
    assert metrics["clips_val"] == 2 and metrics["clips_train"] == 4
    assert metrics["quarantined_empty_file"] == 2 and metrics["rejected_low_contrast"] == 1
    assert metrics["validation_success"] == 1
    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values())


def test_previews_are_the_lowest_and_highest_motion_clips_and_are_read_when_saved():
    table = _clip_table(5)
    frames = {
        cid: (lambda i=i: np.full((9, 64, 112, 3), i, np.uint8)) for i, cid in enumerate(table["clip_id"])
    }
    previews = nodes.select_clip_previews(frames, table, 2)
    assert sorted(previews) == ["motion_01.00_clip-0", "motion_05.00_clip-4"]  # lowest and highest motion
    assert previews["motion_05.00_clip-4"]()[0, 0, 0, 0] == 4


def _records_with_thumbnails(table: pd.DataFrame, height: int, width: int) -> dict:
    return _lazy(
        {
            video_id: VideoRecord(
                video_id, thumbnails={c: np.zeros((height, width, 3), np.uint8) for c in clips["clip_id"]}
            )
            for video_id, clips in table.groupby("video_id")
        }
    )


def test_render_contact_sheet_shows_every_clip():
    table = _clip_table(7).assign(reason="")
    table.loc[3, "reason"] = "static"
    sheet = nodes.render_contact_sheet(_records_with_thumbnails(table, 64, 112), table, columns=3)
    assert sheet.size == (3 * 112, 3 * (64 + 28))
    # The rejected clip's caption is red.
    caption = np.asarray(sheet)[64 + 92 : 92 * 2, 0:112]
    assert ((caption[..., 0] > 200) & (caption[..., 1] < 80)).any()


def test_previews_and_contact_sheet_of_720p_clips_are_downscaled():
    table = _clip_table(2).assign(reason="")
    frames = {cid: (lambda: np.zeros((17, 720, 1280, 3), np.uint8)) for cid in table["clip_id"]}
    previews = nodes.select_clip_previews(frames, table, 2)
    assert {p().shape for p in previews.values()} == {(17, 180, 320, 3)}
    assert shrink(np.zeros((1, 720, 1280, 3), np.uint8), THUMBNAIL_WIDTH).shape == (1, 126, 224, 3)
    sheet = nodes.render_contact_sheet(_records_with_thumbnails(table, 126, 224), table, columns=2)
    assert sheet.size == (2 * 224, 126 + 28)


def test_curate_videos_turns_phone_videos_upright_and_records_how_they_were_sampled(tmp_path: Path):
    from phone_videos import write_phone_videos

    videos = write_phone_videos(tmp_path)
    sources = {f"user/{path.name}": path for path in videos.values()}
    records = _curate(sources)
    index, quarantine = nodes.collect_clips(_lazy(records))
    frames = {clip: frames for record in records.values() for clip, frames in record.frames.items()}
    assert quarantine.empty
    by_video = index.groupby("video_id")
    assert by_video["rotation"].unique().map(list).to_dict() == {
        "user/dropped.mp4": [0],
        "user/portrait.mp4": [90],
        "user/upside_down.mp4": [180],
        "user/vfr.mp4": [0],
    }
    assert by_video.size().to_dict() == {video: 2 for video in sources}  # whole clips from every file
    assert by_video["max_gap_ms"].max().round().to_dict() == {
        "user/dropped.mp4": 125,
        "user/portrait.mp4": 42,
        "user/upside_down.mp4": 42,
        "user/vfr.mp4": 250,
    }
    assert (index["effective_fps"] > 0).all() and (index["start_time_s"] >= 0).all()
    assert {clip.shape for clip in frames.values()} == {(9, 64, 112, 3)}


def test_a_clip_with_a_long_gap_between_frames_is_rejected():
    row = _clip_table(1).iloc[0].to_dict()
    assert rejection_reasons({**row, "max_gap_ms": 800.0}, FILTERS) == "frame gap"  # the phone stalled


def test_a_video_and_its_recompressed_and_trimmed_copies_land_in_one_split(tmp_path: Path):
    from phone_videos import write_copies

    from mobilei2v_pipeline.video.synthetic import plan_synthetic_videos, render_frames

    specs = plan_synthetic_videos(5, 4, 160, 96, 12, 3.0, 0.5, 3.0, 2, rejects={})
    copies = write_copies(tmp_path / "copies", list(render_frames(specs[0])))
    sources = {f"user/{name}.mp4": path for name, path in copies.items()}
    for spec in specs[1:]:
        path = tmp_path / f"{spec.name}.mp4"
        path.write_bytes(synthetic_video_bytes(spec, crf=23, preset="veryfast"))
        sources[f"user/{spec.name}.mp4"] = path
    records = _lazy(_curate(sources))
    scores, _ = nodes.collect_clips(records)
    split = {"val_fraction": 0.5, "salt": "s", "near_duplicate_max_distance": 6}

    grouped = nodes.group_near_duplicates(records, scores.drop(columns="reason"), split)

    groups = grouped.groupby("video_id")["duplicate_group"].first().to_dict()
    assert {name: groups[f"user/{name}.mp4"] for name in copies} == dict.fromkeys(copies, "user/original.mp4")
    assert [groups[f"user/{spec.name}.mp4"] for spec in specs[1:]] == [
        f"user/{s.name}.mp4" for s in specs[1:]
    ]
    copy_ids = [f"user/{name}.mp4" for name in copies]
    for salt in "abcdefgh":  # whatever the hash, the copies share a split
        splits = nodes.assign_splits(grouped, pd.DataFrame(), pd.DataFrame(), {**split, "salt": salt})
        assert splits.loc[splits["video_id"].isin(copy_ids), "split"].nunique() == 1
    metrics = nodes.summarize_curation(
        sources,
        pd.DataFrame({"reason": pd.Series(dtype=str)}),
        scores,
        pd.DataFrame({"reason": pd.Series(dtype=str)}),
        splits,
        {"success": True, "failed": []},
    )
    assert metrics["near_duplicate_groups"] == 1 and metrics["near_duplicate_videos"] == 3


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (
            "train",
            "no val clips: 2 videos gave 4 clips, all in train; add videos or raise "
            "curation.split.val_fraction",
        ),
        (
            "val",
            "no train clips: 2 videos gave 4 clips, all in val; add videos or lower "
            "curation.split.val_fraction",
        ),
    ],
)
def test_an_empty_split_stops_the_run_saying_what_to_do(split, message):
    table = pd.concat([_clip_table(2), _clip_table(2).assign(clip_id=lambda t: t["clip_id"] + "b")])
    table = table.assign(split=split)
    summary, _ = nodes.validate_clip_table(table, VALIDATION, CURATION)
    with pytest.raises(ValidationFailedError) as error:
        nodes.publish_clip_table(table, summary, {"videos_quarantined": 0})
    assert error.value.message.startswith(message + ". See the validation report")
    # The report keeps what Great Expectations found.
    assert "expect_column_distinct_values_to_contain_set" in [f["expectation"] for f in summary["failed"]]
