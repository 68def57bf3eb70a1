"""The benchmarks that are part of a device check run here too, on the CPU at a small size."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import types
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


def test_every_name_a_benchmark_takes_from_the_package_exists():
    """Most benchmarks run for minutes at the paper's size and are not run by the tests; a name moved or
    renamed in the package must still fail here, not an hour into `make bench`."""
    missing = []
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        tree = ast.parse(script.read_text())
        imported = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mobilei2v_pipeline"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    found = getattr(module, alias.name, None)
                    if found is None:  # a submodule not imported by its package
                        try:
                            found = importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{script.name}: {node.module}.{alias.name}")
                            continue
                    imported[alias.asname or alias.name] = found
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                module = imported.get(node.value.id)
                if isinstance(module, types.ModuleType) and not hasattr(module, node.attr):
                    missing.append(f"{script.name}: {node.value.id}.{node.attr}")
    assert not missing
