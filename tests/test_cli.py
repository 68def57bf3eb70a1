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
