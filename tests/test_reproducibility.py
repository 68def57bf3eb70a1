"""The same commit, data and config give the same outputs: two whole smoke runs, each in its own project
copy (another absolute path) and MLflow store, write every DVC out byte for byte the same, which is what
lets a fresh clone's `dvc repro` reproduce the committed dvc.lock. Only the release stage's outs may differ:
its version numbers and champion figures depend on what the registry held before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from conftest import REPO, copy_project, run_kedro, use_project
from mlflow.tracking import MlflowClient

REGISTRY_STAGE = "release"
RUN_TAGS = ("git_commit", "data_version", "kedro_env")


def _dvc_outs() -> list[str]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return [
        next(iter(out)) if isinstance(out, dict) else out
        for name, stage in stages.items()
        if name != REGISTRY_STAGE
        for kind in ("outs", "metrics", "plots")
        for out in stage.get(kind, [])
    ]


def _digests(project: Path, out: str) -> dict[str, str]:
    """md5 of every file of an out (a file, or a folder's files by relative path), as DVC hashes them."""
    root = project / out
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    return {str(p.relative_to(project)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def test_two_smoke_runs_write_every_dvc_out_byte_for_byte(trained_project: Path, tmp_path: Path, monkeypatch):
    again = copy_project(tmp_path / "project")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    use_project(again, monkeypatch, store)
    run_kedro(again)

    outs = _dvc_outs()
    assert len(outs) > 40
    for out in outs:
        first, second = _digests(trained_project, out), _digests(again, out)
        assert first, f"{out}: the smoke run wrote nothing"
        differ = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
        assert not differ, f"{out} differs between two runs: {differ}"

    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("mobilei2v").experiment_id])
    assert runs and all(set(RUN_TAGS) <= set(run.data.tags) for run in runs)
    assert {run.data.tags["kedro_env"] for run in runs} == {"smoke"}
