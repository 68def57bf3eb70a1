"""Folder datasets a DVC stage writes exist after every save, even of nothing: DVC fails on a missing out."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DatasetError

from mobilei2v_pipeline.datasets.output_folder import OutputFolderDataset
from mobilei2v_pipeline.datasets.video_folder import VideoFolderDataset
from mobilei2v_pipeline.datasets.working_folder import WorkingFolderDataset


def test_an_empty_save_leaves_an_empty_folder(tmp_path: Path):
    programs = OutputFolderDataset(
        path=str(tmp_path / "programs"),
        filename_suffix=".pte",
        overwrite=True,
        dataset="mobilei2v_pipeline.datasets.binary_file.BinaryFileDataset",
    )
    programs.save({"denoiser": b"program"})
    assert [p.name for p in (tmp_path / "programs").iterdir()] == ["denoiser.pte"]
    programs.save({})
    assert (tmp_path / "programs").is_dir() and not any((tmp_path / "programs").iterdir())

    videos = VideoFolderDataset(str(tmp_path / "synthetic"))
    videos.save({})  # the user's videos are curated: no synthetic ones, but the folder DVC expects
    assert (tmp_path / "synthetic").is_dir() and videos.load() == {}
    videos.save({"a.mp4": b"video"})
    videos.save({})
    assert videos.load() == {}


def test_a_video_folder_in_object_storage_lists_urls_and_keeps_exactly_the_last_save(tmp_path: Path):
    videos = VideoFolderDataset(f"memory://{tmp_path.name}/videos")
    assert videos.load() == {}
    videos.save({"a.mp4": b"a", "phone/b.mp4": lambda: b"b", ".hidden": b"h"})
    listed = videos.load()
    assert listed == {
        "a.mp4": f"memory:///{tmp_path.name}/videos/a.mp4",
        "phone/b.mp4": f"memory:///{tmp_path.name}/videos/phone/b.mp4",
    }
    videos.save({"a.mp4": b"a2"})
    assert list(videos.load()) == ["a.mp4"]


def test_a_working_folder_loads_as_its_path_created_and_is_never_saved_to(tmp_path: Path):
    folder = WorkingFolderDataset(path=str(tmp_path / "stage" / "checkpoints"))
    assert not folder.exists()
    assert folder.load() == tmp_path / "stage" / "checkpoints" and folder.exists()
    with pytest.raises(DatasetError, match="written by the node"):
        folder.save(tmp_path)
