"""The same commit, data and config give the same figures: two whole smoke runs, each in its own project copy
and MLflow store, write identical metrics files, apart from what a clock or the registry's history sets."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import copy_project, run_kedro, use_project
from mlflow.tracking import MlflowClient

# Wall-clock measurements (latencies, their ratios, durations, peak memory) differ from run to run on any
# machine; release.json's version numbers and champion figures depend on what the registry held before.
MEASURED = re.compile(r"(_ms|_s|_seconds|speedup|_speedup_vs_\w+|peak_memory_mb)$|^speedup_|_speedup_")
REGISTRY = re.compile(r"^(challenger_version|champion_version|promoted|passed_gate|champion_\w+)$")
RUN_TAGS = ("git_commit", "data_version", "kedro_env")


def _metrics(project: Path) -> dict[str, dict[str, float]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((project / "data/08_reporting").glob("*.json"))}


def test_two_smoke_runs_write_identical_metrics(trained_project: Path, tmp_path: Path, monkeypatch):
    again = copy_project(tmp_path / "project")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    use_project(again, monkeypatch, store)
    run_kedro(again)

    first, second = _metrics(trained_project), _metrics(again)
    assert first.keys() == second.keys() and len(first) >= 10
    compared = 0
    for name in first:
        assert first[name].keys() == second[name].keys(), name
        for key, value in first[name].items():
            if MEASURED.search(key) or (name == "release.json" and REGISTRY.match(key)):
                continue
            assert second[name][key] == value, f"{name}: {key} {value} then {second[name][key]}"
            compared += 1
    assert compared > 100

    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("mobilei2v").experiment_id])
    assert runs and all(set(RUN_TAGS) <= set(run.data.tags) for run in runs)
    assert {run.data.tags["kedro_env"] for run in runs} == {"smoke"}
