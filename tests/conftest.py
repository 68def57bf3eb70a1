"""Shared fixtures: a throw-away copy of the project, so tests never touch the real data/ or mlflow.db."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_LAYERS = [
    "01_raw/videos",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
]
# What a project copy needs: config, the code DVC stages depend on, and the project's metadata.
PROJECT_FILES = ["conf", "src", "notebooks", "pyproject.toml", "dvc.yaml", ".dvcignore", ".telemetry"]


# The longest test files, longest first: the two workers (`--dist loadfile --no-loadscope-reorder`) take files
# in collection order, so these start first and the many short files fill in around them, instead of one
# worker finishing alone. (xdist's default reorder, by test count, started the one-test sweep last: +1 min.)
LONGEST_FILES = (
    "test_retrain.py",
    "test_experiments.py",
    "test_training_stages.py",
    "test_evaluation.py",
    "test_reproducibility.py",
    "test_dvc.py",
    "test_profiling.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FILES)))  # stable: in-file order kept


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite MLflow store for the session: creating its schema takes seconds, so it is made once."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def load_arrays(path: Path) -> dict[str, Any]:
    """Arrays a stage handed on (export samples, torch outputs, denoiser inputs), read as the catalog does."""
    from mobilei2v_pipeline.datasets.numpy_arrays import NumpyArraysDataset

    return NumpyArraysDataset(str(path)).load()


def copy_project(root: Path) -> Path:
    """A copy of the project at `root` (without the user's conf/local and data)."""
    root.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=_ignore_local_state)
        elif source.exists():
            shutil.copy2(source, root / name)
    (root / "conf" / "local").mkdir(exist_ok=True)
    for layer in DATA_LAYERS:
        (root / "data" / layer).mkdir(parents=True, exist_ok=True)
        (root / "data" / layer / ".gitkeep").touch()
    return root


def use_project(root: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> None:
    """Work in `root`, with the session's MLflow store and this venv's commands on PATH."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(root)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> Path:
    """A copy of the project in a temp folder, as the working directory."""
    root = copy_project(tmp_path / "project")
    use_project(root, monkeypatch, tracking_uri)
    return root


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory, tracking_uri: str) -> Path:
    """A project copy where the whole smoke pipeline has run once, shared by the tests that read its outputs.
    Tests that change it work on their own copy (shutil.copytree)."""
    root = copy_project(tmp_path_factory.mktemp("trained") / "project")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_project(root, monkeypatch, tracking_uri)
        run_kedro(root)
    return root


@pytest.fixture
def dvc_project(project: Path) -> Path:
    """The project copy as a git repository with DVC initialised and its local remote, first commit made."""
    return init_dvc_repo(project)


def without_app_programs(project: Path) -> None:
    """Leave the ExecuTorch programs (fp32 and 8-bit) and the Core ML packages out of a project copy's smoke
    export: tests of retraining and sweeps do not read them, and they cost half a minute per export."""
    export = project / "conf/smoke/parameters_export.yml"
    text = export.read_text()
    for graphs in ("graphs: [denoiser]", "graphs: [light_decoder, light_encoder]"):
        assert graphs in text, f"conf/smoke/parameters_export.yml no longer says {graphs!r}"
        text = text.replace(graphs, "graphs: []")
    export.write_text(text)


def init_dvc_repo(project: Path) -> Path:
    shutil.copytree(
        REPO / ".dvc", project / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local")
    )
    shutil.copy2(REPO / ".gitignore", project / ".gitignore")
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "project copy"], cwd=project, check=True)
    return project


def _ignore_local_state(directory: str, names: list[str]) -> list[str]:
    ignored = {"__pycache__", ".ipynb_checkpoints", "*.egg-info"}
    if Path(directory).name == "local" and Path(directory).parent.name == "conf":
        return [n for n in names if n not in (".gitkeep", "example.credentials.yml")]
    return [n for n in names if n in ignored or n.endswith(".egg-info")]


def run_kedro(
    project: Path, env: str = "smoke", pipeline: str | None = None, params: dict[str, Any] | None = None
):
    """Run pipelines in this process through a KedroSession, as `kedro run` does."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    try:
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            return session.run(pipeline_names=[pipeline] if pipeline else None)
    finally:
        # kedro-mlflow re-opens its run once per node and closes it once, which leaves it active in this
        # process; the next session would log into it. (`kedro run` is one process per run.)
        while mlflow.active_run():
            mlflow.end_run()


def kedro_cli(project: Path, *args: str, env: str = "smoke") -> subprocess.CompletedProcess:
    """Run the real `kedro` command in the project copy."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), *args, "--env", env],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
