"""What every run records: the data version, the git state, and no telemetry."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import fsspec
import yaml
from conftest import REPO

from mobilei2v_pipeline.data_version import data_version
from mobilei2v_pipeline.git_state import git_state
from mobilei2v_pipeline.offline import OFFLINE_ENV, go_offline


def test_data_version_follows_the_content_of_the_raw_videos(tmp_path: Path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"one")
    first = data_version({"a.mp4": video}, {"seed": 1})
    assert first == data_version({"a.mp4": video}, {"seed": 2})  # generator settings do not matter then
    video.write_bytes(b"two")
    assert data_version({"a.mp4": video}, {"seed": 1}) != first
    assert first.startswith("raw-")


def test_data_version_reads_a_video_again_only_when_its_file_changed(tmp_path: Path):
    video, cache = tmp_path / "a.mp4", tmp_path / "cache" / "hashes.json"
    video.write_bytes(b"one")
    first = data_version({"a.mp4": video}, {}, cache)
    assert first == data_version({"a.mp4": video}, {})  # the same version with or without the cache
    # A cached hash is trusted while size and time match (here a stale one, to show it was not re-read) ...
    entry = json.loads(cache.read_text())[str(video.resolve())]
    cache.write_text(json.dumps({str(video.resolve()): entry | {"sha256": "stale"}}))
    assert data_version({"a.mp4": video}, {}, cache) != first
    # ... and a changed file is hashed again.
    video.write_bytes(b"three")
    assert data_version({"a.mp4": video}, {}, cache) == data_version({"a.mp4": video}, {})


def test_data_version_of_synthetic_data_follows_the_generator_settings():
    assert data_version({}, {"seed": 1}) == data_version({}, {"seed": 1}) != data_version({}, {"seed": 2})
    assert data_version({}, {"seed": 1}).startswith("synthetic-")


def test_git_state_reports_commit_and_dirty_flag(tmp_path: Path):
    assert git_state(tmp_path) == {"git_commit": "unknown", "git_dirty": "unknown"}
    git = ["git", "-c", "user.email=t@e.st", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "add", "f"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=tmp_path, check=True)
    state = git_state(tmp_path)
    assert len(state["git_commit"]) == 40 and state["git_dirty"] == "false"
    (tmp_path / "f").write_text("2")
    assert git_state(tmp_path)["git_dirty"] == "true"


def test_telemetry_is_off_unless_the_user_says_otherwise(monkeypatch):
    for key in OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    go_offline()
    assert (
        os.environ["KEDRO_DISABLE_TELEMETRY"] == "true" and os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    )
    assert os.environ["DVC_NO_ANALYTICS"] == "1" and os.environ["GX_ANALYTICS_ENABLED"] == "False"
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert yaml.safe_load((REPO / ".telemetry").read_text()) == {"consent": False}
    assert "analytics = false" in (REPO / ".dvc" / "config").read_text()


def test_data_version_of_videos_in_object_storage_is_that_of_the_same_files_on_disk(tmp_path: Path):
    (tmp_path / "a.mp4").write_bytes(b"one")
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"/{tmp_path.name}/a.mp4", b"one")
    remote = {"a.mp4": f"memory:///{tmp_path.name}/a.mp4"}
    cache = tmp_path / "hashes.json"
    assert data_version(remote, {}, cache) == data_version({"a.mp4": tmp_path / "a.mp4"}, {}, cache)
    assert remote["a.mp4"] in json.loads(cache.read_text())  # cached by URL and the object's key
    fs.pipe_file(f"/{tmp_path.name}/a.mp4", b"two")
    assert data_version(remote, {}, cache) != data_version({"a.mp4": tmp_path / "a.mp4"}, {})
