"""Where curation's per-video work runs changes nothing it makes: one process, a pool of two, and Ray tasks
on a local Ray cluster give the same records, byte for byte, and a broken file is quarantined whatever runs
it."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from test_nodes import CURATION, SYNTHETIC

from mobilei2v_pipeline.datasets.video_folder import VideoFolderDataset
from mobilei2v_pipeline.datasets.video_record import CuratedClipsDataset, VideoRecordDataset
from mobilei2v_pipeline.pipelines.data_curation import nodes
from mobilei2v_pipeline.pipelines.data_curation.engine import OrderedResults

RAY = Path(sys.executable).parent / "ray"


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The smoke settings' synthetic videos and two broken files."""
    from broken_videos import write_broken_videos

    root = tmp_path_factory.mktemp("sources")
    broken = write_broken_videos(root / "broken")
    videos = {f"synthetic/{n}": root / n for n in nodes.synthesize_raw_videos({}, SYNTHETIC)}
    for name, make in nodes.synthesize_raw_videos({}, SYNTHETIC).items():
        (root / name).write_bytes(make())
    return videos | {f"user/{name}": root / "broken" / name for name in sorted(broken)[:2]}


def _save(records: dict, folder: Path) -> dict[str, str]:
    """Save the records as the catalog does (in sorted order) and hash the files."""
    digests = {}
    for video_id in sorted(records):
        path = folder / f"{video_id}.safetensors"
        VideoRecordDataset(str(path)).save(records[video_id]())
        digests[video_id] = hashlib.md5(path.read_bytes()).hexdigest()
    return digests


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_one_process_two_processes_and_ray_make_the_same_records(sources, tmp_path: Path):
    one = _save(nodes.curate_videos(sources, {**CURATION, "workers": 1}), tmp_path / "one")
    two = _save(nodes.curate_videos(sources, {**CURATION, "workers": 2}), tmp_path / "two")
    port = _free_port()
    start = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    # A cluster of this test's own, without Ray's token authentication (it listens on this machine only).
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    options = ["--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run([*start, *options], check=True, capture_output=True, env=env)
    try:
        ray = {**CURATION["ray"], "address": f"127.0.0.1:{port}"}
        on_ray = _save(
            nodes.curate_videos(sources, {**CURATION, "engine": "ray", "ray": ray}), tmp_path / "ray"
        )
    finally:
        subprocess.run([RAY, "stop", "--force"], check=True, capture_output=True, env=env)
    assert one == two == on_ray and len(one) == len(sources)

    records = {k: VideoRecordDataset(str(tmp_path / "ray" / f"{k}.safetensors")).load for k in sources}
    scores, quarantine = nodes.collect_clips(records)
    assert set(quarantine["video_id"]) == {k for k in sources if k.startswith("user/")}
    assert (quarantine["reason"] != "").all() and len(scores) > 0


def test_records_round_trip_and_the_kept_clips_read_as_frames(sources, tmp_path: Path):
    _save(nodes.curate_videos(sources, {**CURATION, "workers": 1}), tmp_path)
    lazy = nodes.curate_videos(sources, {**CURATION, "workers": 1})
    records = {video_id: lazy[video_id]() for video_id in sorted(lazy)}
    made = {video_id: (lambda record=record: record) for video_id, record in records.items()}
    video_id = "synthetic/synthetic_000_normal.mp4"
    record = VideoRecordDataset(str(tmp_path / f"{video_id}.safetensors")).load()
    again = made[video_id]()
    assert record.rows == again.rows and record.hashes == again.hashes and record.quarantine is None
    for clip in again.frames:
        np.testing.assert_array_equal(record.frames[clip], again.frames[clip])
    clips = CuratedClipsDataset(str(tmp_path)).load()
    kept = pd.DataFrame(nodes.collect_clips(made)[0]).query("reason == ''")["clip_id"]
    assert sorted(clips) == sorted(kept)  # rejected clips' frames are not kept
    np.testing.assert_array_equal(clips[next(iter(again.frames))](), next(iter(again.frames.values())))


def test_results_are_made_at_most_a_few_ahead_of_the_one_taken():
    made = []
    results = OrderedResults(
        {k: (k,) for k in "abcdef"}, lambda k: made.append(k) or k, lambda k: k.upper(), ahead=2
    )
    assert results("a") == "A" and made == ["a", "b", "c"]
    assert results("b") == "B" and made == ["a", "b", "c", "d"]
    assert [results(k) for k in "cdef"] == list("CDEF") and made == list("abcdef")


def test_videos_in_object_storage_give_the_records_of_the_same_files_on_disk(sources, tmp_path: Path):
    """An fsspec folder (here `memory://`, which has no path on disk, so every byte comes through fsspec's
    file objects) is listed as URLs and curated to the same clips; a file gone between listing and reading is
    quarantined as unreadable, not a failed run."""
    bucket = f"memory://videos-{tmp_path.name}"
    folder = VideoFolderDataset(bucket)
    folder.save({video_id: Path(path).read_bytes() for video_id, path in sources.items()})
    listed = folder.load()
    assert set(listed) == set(sources) and all(url.startswith("memory://") for url in listed.values())
    gone = max(sources)  # a broken file: its reason changes, the clip table does not
    fs, path = fsspec.core.url_to_fs(listed[gone])
    fs.rm_file(path)

    settings = {**CURATION, "workers": 1}
    local = nodes.collect_clips(nodes.curate_videos(sources, settings))
    remote = nodes.collect_clips(nodes.curate_videos(listed, settings))
    pd.testing.assert_frame_equal(remote[0], local[0])  # the clip table of the readable videos
    reasons = remote[1].set_index("video_id")["reason"]
    assert reasons[gone] == "unreadable_file"
    assert reasons.drop(gone).equals(local[1].set_index("video_id")["reason"].drop(gone))
