"""The benchmarks that are part of a device check run here too, on the CPU at a small size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_the_training_step_benchmark_reports_throughput_and_memory_per_configuration(tmp_path: Path):
    output = tmp_path / "training_step.json"
    args = ["--preset", "tiny", "--quick", "--batch-sizes", "1", "2", "--no-compile", "--output", str(output)]
    result = subprocess.run(
        [sys.executable, "benchmarks/training_step.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    rows = report["rows"]
    assert [(r["batch"], r["checkpointing"]) for r in rows] == [(1, False), (1, True), (2, False), (2, True)]
    assert all(r["status"] == "ok" and r["tokens"] == 336 for r in rows)
    for row in rows:
        assert row["tokens_per_s"] == row["batch"] * row["tokens"] / row["step_s"] > 0
        assert row["model_tflop_per_s"] > 0 and "mfu" not in row  # no known peak for a CPU
    assert report["settings"]["device"] == "cpu" and "tokens/s" in result.stdout
