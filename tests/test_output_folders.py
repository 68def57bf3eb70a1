"""Folder datasets a DVC stage writes exist after every save, even of nothing: DVC fails on a missing out."""

from __future__ import annotations

from pathlib import Path

from mobilei2v_pipeline.datasets.output_folder import OutputFolderDataset
from mobilei2v_pipeline.datasets.video_folder import VideoFolderDataset


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
