"""DVC: dvc.yaml stays in step with the Kedro catalog, and `dvc repro` reruns exactly what changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO, init_dvc_repo, use_project
from kedro.config import OmegaConfigLoader
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

# Catalog outputs that are deliberately not DVC outs (nor deps) of any stage, each with the reason: each run
# writes other bytes, so a rerun of the same commit could never reproduce dvc.lock. They still go to MLflow
# through the catalog; git ignores them by name in the top .gitignore (DVC writes no entry for them).
NOT_DVC_OUTS = {
    "clip_validation_docs": "GE's HTML page has a timestamp and random ids",
    "release_gate": "its latency checks hold this run's measured latency",
}
# ... and every output in this folder: what a clock measured (latencies, wall times, memory peaks).
MEASURED = "data/08_reporting/measured/"


def _dataset_path(entry: dict) -> str | None:
    """The file or folder a catalog entry writes, looking through wrappers such as MlflowArtifactDataset."""
    while entry:
        path = entry.get("filepath") or entry.get("path")
        if path:
            return path
        entry = entry.get("dataset") if isinstance(entry.get("dataset"), dict) else None
    return None


def _stage_paths(stage: dict, key: str) -> set[str]:
    return {next(iter(item)) if isinstance(item, dict) else item for item in stage.get(key, [])}


def _stage_pipeline(stage: dict):
    """The Kedro pipeline a stage runs: `kedro run --pipelines NAME [--tags TAG]`."""
    words = stage["cmd"].split()
    assert words[:4] == ["kedro", "run", "--pipelines", words[3]] and len(words) in (4, 6), stage["cmd"]
    pipeline = pipelines[words[3]]
    if len(words) == 6:
        assert words[4] == "--tags"
        pipeline = pipeline.only_nodes_with_tags(words[5])
    return words[3], pipeline


def test_dvc_stages_match_the_kedro_catalog():
    bootstrap_project(REPO)
    config = OmegaConfigLoader(str(REPO / "conf"), base_env="base", default_run_env="local")
    catalog = config["catalog"]
    paths = {name: _dataset_path(entry) for name, entry in catalog.items() if _dataset_path(entry)}
    # Folders the nodes write as they work (checkpoints, AI Hub's downloads): inputs of the node, outs of the
    # stage; the training checkpoints persist (DVC keeps them through a rerun, so training resumes).
    working = {n for n, entry in catalog.items() if entry["type"].endswith("WorkingFolderDataset")}
    measured = {name for name, path in paths.items() if path.startswith(MEASURED)}
    unversioned = set(NOT_DVC_OUTS) | measured
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

    run = {name: _stage_pipeline(stage) for name, stage in stages.items()}
    assert {name for name, _ in run.values()} == set(pipelines) - {"__default__"}
    for name, stage in stages.items():
        _, pipeline = run[name]
        inputs = {paths[d] for d in pipeline.inputs() if d in paths and d not in unversioned | working}
        outputs = {paths[d] for d in pipeline.all_outputs() if d in paths and d not in unversioned}
        deps = {d for d in _stage_paths(stage, "deps") if d.startswith("data/")}
        outs = _stage_paths(stage, "outs") | _stage_paths(stage, "metrics") | _stage_paths(stage, "plots")
        folders = {paths[d] for d in pipeline.inputs() & working}
        assert deps == inputs - outputs, f"stage {name}: deps differ from the pipeline's catalog inputs"
        assert outs == outputs | folders, f"stage {name}: outs differ from the catalog outputs"
        assert f"data/08_reporting/{name}.json" in _stage_paths(stage, "metrics")
    persisted = {next(iter(o)) for s in stages.values() for o in s.get("outs", []) if isinstance(o, dict)}
    assert persisted == {paths[n] for n in working if n.endswith("_checkpoints")}
    # Each exception is a real output of some stage's pipeline, no stage's out or dep, and ignored by git.
    produced = set().union(*(pipeline.all_outputs() for _, pipeline in run.values()))
    tracked = {p for s in stages.values() for k in ("deps", "outs", "metrics") for p in _stage_paths(s, k)}
    gitignore = (REPO / ".gitignore").read_text().splitlines()
    assert MEASURED in gitignore
    assert len(measured) >= 10 and measured <= produced, "the measured folder holds the stages' timings"
    assert not any(p.startswith(MEASURED) for p in tracked)
    for name in NOT_DVC_OUTS:
        assert name in produced and name in paths, f"{name} is no pipeline's catalog output"
        assert paths[name] not in tracked, f"{name} is in dvc.yaml although NOT_DVC_OUTS says it is not"
        assert paths[name] in gitignore, f"{paths[name]} needs its own line in .gitignore"


def _dvc(project: Path, *args: str) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KEDRO_ENV": "smoke"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_dvc_repro_is_a_no_op_until_a_parameter_changes(dvc_project: Path):
    first = _dvc(dvc_project, "repro", "data_curation")
    assert "Running stage 'data_curation'" in first
    assert (dvc_project / "data/08_reporting/data_curation.json").exists()

    second = _dvc(dvc_project, "repro", "data_curation")
    assert "Running stage" not in second and "up to date" in second

    params = dvc_project / "conf/base/parameters_data_curation.yml"
    params.write_text(params.read_text().replace("previews: 4", "previews: 3"))
    assert "curation.previews" in _dvc(dvc_project, "params", "diff")
    third = _dvc(dvc_project, "repro", "data_curation")
    assert "Running stage 'data_curation'" in third

    assert "data_curation.json" in _dvc(dvc_project, "metrics", "show")
    _dvc(dvc_project, "push")
    assert any((dvc_project / ".dvc_remote").rglob("*")), "dvc push wrote nothing to the default local remote"


def test_changing_stage2_remakes_neither_the_trajectories_nor_stage1(
    trained_project: Path, tmp_path: Path, monkeypatch, tracking_uri: str
):
    project = init_dvc_repo(shutil.copytree(trained_project, tmp_path / "project"))
    use_project(project, monkeypatch, tracking_uri)
    _dvc(project, "commit", "--force")  # record what the smoke run made as the stages' last run
    assert "up to date" in _dvc(project, "status")
    trajectories = project / "data/05_model_input/teacher_trajectories.pt"
    student1 = project / "data/06_models/distillation/student1.pt"
    before = {p: hashlib.md5(p.read_bytes()).hexdigest() for p in (trajectories, student1)}

    params = project / "conf/base/parameters_distillation.yml"
    params.write_text(params.read_text().replace("adversarial: 0.01", "adversarial: 0.02"))
    dry = _dvc(project, "repro", "--dry")
    assert "Running stage 'distillation_stage2'" in dry
    assert "Stage 'distillation_trajectories' didn't change" in dry
    assert "Stage 'distillation_stage1' didn't change" in dry

    assert "Running stage 'distillation_stage2'" in _dvc(project, "repro", "distillation_stage2")
    assert {p: hashlib.md5(p.read_bytes()).hexdigest() for p in before} == before
    assert "evaluation" in _dvc(project, "status")  # a new student: the evaluation is out of date
