"""A `dvc exp run -S` sweep on the smoke env: each experiment in `dvc exp show`, one MLflow run each tagged
with its name, never promoted, and compared by the experiments notebook."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import REPO, init_dvc_repo, without_app_programs
from mlflow.tracking import MlflowClient

from notebooks import execute_notebook, plain_texts

BIN = Path(sys.executable).parent
PARAMS = "conf/base/parameters_quantization.yml:quantization"
# Each experiment sets every swept value, whatever the workspace holds (baseline: per-channel, MinMax).
SWEEP = {
    "per-tensor": {"per_channel": "false", "calibrate_method": "MinMax"},
    "percentile": {"per_channel": "true", "calibrate_method": "Percentile"},
}


def test_a_sweep_shows_in_dvc_and_in_mlflow_one_run_per_experiment(
    trained_project: Path, tmp_path: Path, monkeypatch
):
    project = shutil.copytree(trained_project, tmp_path / "project")
    without_app_programs(project)  # not what is swept or retrained
    init_dvc_repo(project)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("KEDRO_ENV", "smoke")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    dvc = [str(BIN / "dvc")]
    subprocess.run([*dvc, "commit", "--force", "--quiet"], cwd=project, check=True)
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "baseline outputs"], cwd=project, check=True)

    for name, values in SWEEP.items():
        settings = [arg for key, value in values.items() for arg in ("-S", f"{PARAMS}.{key}={value}")]
        result = subprocess.run(
            [*dvc, "exp", "run", "-n", name, *settings],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Running stage 'quantization'" in result.stdout
        assert "Running stage 'distillation_stage2'" not in result.stdout  # only what the parameter feeds

    shown = subprocess.run(
        [*dvc, "exp", "show", "--csv"], cwd=project, capture_output=True, text=True, check=True
    )
    table = pd.read_csv(io.StringIO(shown.stdout)).set_index("Experiment")
    for name, values in SWEEP.items():
        row = table.loc[name]
        assert row["quantization.calibrate_method"] == values["calibrate_method"]
        assert row["w8a8_psnr_db"] > 0 and row["passed_gate"] in (0, 1) and row["promoted"] == 0

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("mobilei2v")
    for name in SWEEP:
        runs = client.search_runs([experiment.experiment_id], f"tags.dvc_experiment = '{name}'")
        assert len(runs) == 1, f"{name}: {len(runs)} runs"
        run = runs[0]
        assert run.info.run_name == name
        assert {"w8a8_psnr_db", "per_frame_latency_ms", "passed_gate"} <= set(run.data.metrics)
        assert run.data.params["quantization.calibrate_method"] == SWEEP[name]["calibrate_method"]
        assert run.data.tags["kedro_env"] == "smoke" and len(run.data.tags["git_commit"]) == 40
        assert run.data.tags["data_version"].startswith("synthetic-")
    # Experiments compare; they never move the champion alias.
    assert not client.get_registered_model("mobilei2v-student").aliases

    shutil.copy2(REPO / "notebooks/experiments.ipynb", project / "notebooks")
    notebook = execute_notebook(project / "notebooks" / "experiments.ipynb")
    texts = "\n".join(plain_texts(notebook))
    assert all(name in texts for name in SWEEP), texts
    release = json.loads((project / "data/08_reporting/release.json").read_text())
    assert release["promoted"] == 0
