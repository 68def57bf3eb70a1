"""The default MLflow store is the one of the project a command runs in, not of the checkout the package
was installed from: two checkouts sharing one venv keep their own runs, models and champion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, copy_project, kedro_cli

from mobilei2v_pipeline.settings import default_tracking_uri

STORE_OF_CWD = (
    "from pathlib import Path; from mobilei2v_pipeline.project_config import load_config, tracking_uri; "
    "print(tracking_uri(Path.cwd(), load_config(Path.cwd(), None)))"
)


def test_the_default_store_is_at_the_root_of_the_kedro_project_of_the_folder(tmp_path: Path):
    project = copy_project(tmp_path / "checkout")
    assert default_tracking_uri(project) == f"sqlite:///{project.resolve()}/mlflow.db"
    assert default_tracking_uri(project / "conf/base") == f"sqlite:///{project.resolve()}/mlflow.db"
    outside = tmp_path / "no_project"
    outside.mkdir()
    assert default_tracking_uri(outside) == f"sqlite:///{outside.resolve()}/mlflow.db"


def test_two_checkouts_sharing_one_venv_keep_separate_stores(tmp_path: Path, monkeypatch):
    checkouts = [copy_project(tmp_path / name) for name in ("first", "second")]
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # The store `mobilei2v retrain` and `mobilei2v ui` use, in each checkout (the package is from REPO).
    stores = [
        subprocess.run(
            [sys.executable, "-c", STORE_OF_CWD], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        for root in checkouts
    ]
    assert stores == [f"sqlite:///{root.resolve()}/mlflow.db" for root in checkouts]

    # `kedro run` in the first checkout logs into the first checkout's store only.
    repo_store = REPO / "mlflow.db"
    before = repo_store.stat().st_mtime_ns if repo_store.exists() else None
    result = kedro_cli(checkouts[0], "run", "--pipelines", "data_curation")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (checkouts[0] / "mlflow.db").exists() and not (checkouts[1] / "mlflow.db").exists()
    assert (repo_store.stat().st_mtime_ns if repo_store.exists() else None) == before
