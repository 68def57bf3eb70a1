"""The experiments notebook compares MLflow runs per experiment: a smoke run's figures, and an empty store."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import mlflow
import pytest
from conftest import REPO, use_project

from notebooks import errors, execute_notebook, images, nbformat, outputs, plain_texts, stdout

NOTEBOOK = Path("notebooks") / "experiments.ipynb"
SUMMARY = re.compile(r"^experiments: (\d+); best quality: (.+); fastest: (.+)$", re.MULTILINE)
NO_RUNS = "No runs to compare"


def notebook_in(project: Path) -> Path:
    """The committed notebook, copied into the project copy's notebooks/ (the copy may predate it)."""
    path = project / NOTEBOOK
    shutil.copy2(REPO / NOTEBOOK, path)
    return path


def table_column(text: str, column: str) -> dict[str, str]:
    """Experiment -> the `column` cell of a DataFrame printed as plain text with the index named
    `experiment` (header line, then the index name's line, then one line per row). Numbers are right-aligned
    under their column's name; the index is left-aligned, at least two spaces before the first column."""
    lines = text.splitlines()
    end = lines[0].index(column) + len(column)
    return {line.split("  ")[0].strip(): line[:end].split()[-1] for line in lines[2:] if line.strip()}


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(REPO / NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert not outputs(nb), "clear the notebook's outputs before committing it"


def test_the_smoke_run_is_one_experiment_with_its_figures(
    trained_project: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri: str
):
    use_project(trained_project, monkeypatch, tracking_uri)  # the kernel inherits MLFLOW_TRACKING_URI

    nb = execute_notebook(notebook_in(trained_project))

    assert not errors(nb)
    assert NO_RUNS not in stdout(nb)
    tables = [t for t in plain_texts(nb) if "student2_1step_psnr_vs_teacher" in t.splitlines()[0]]
    per_experiment = [t for t in tables if t.splitlines()[1].startswith("experiment")]
    assert per_experiment, f"no table indexed by experiment among {len(tables)} tables"
    psnr = table_column(per_experiment[0], "student2_1step_psnr_vs_teacher")
    # The session's store also holds other tests' runs; reruns of the smoke evaluation give the same figures.
    expected = json.loads((trained_project / "data/08_reporting/evaluation.json").read_text())
    want = f"{expected['student2_1step_psnr_vs_teacher']:.4g}"
    matching = [
        name for name, value in psnr.items() if math.isfinite(float(value)) and f"{float(value):.4g}" == want
    ]
    assert matching, f"no experiment shows student2_1step_psnr_vs_teacher {want}: {psnr}"
    assert len(images(nb)) >= 2, "expected the quality/latency scatter and the latency bars"
    summary = SUMMARY.search(stdout(nb))
    assert summary, stdout(nb)
    assert int(summary.group(1)) == len(psnr) >= 1
    assert {summary.group(2), summary.group(3)} <= set(psnr)


@pytest.mark.parametrize("store", ["missing", "empty"])
def test_an_empty_store_prints_no_runs(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
):
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    if store == "empty":
        mlflow.MlflowClient(tracking_uri=uri).search_experiments()  # creates the schema, no experiment
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    nb = execute_notebook(notebook_in(project))

    assert not errors(nb)
    assert NO_RUNS in stdout(nb)
    assert "experiments: 0; best quality: none; fastest: none" in stdout(nb)
    assert not images(nb)
    assert db.exists() == (store == "empty"), "the notebook created a store where there was none"


def test_runs_group_into_experiments_with_each_figure_from_the_latest_run(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("mobilei2v")
    stage = {"kedro_env": "smoke", "git_commit": "abcdef1234567", "data_version": "dv1"}
    runs = [  # (tags, metrics), oldest first
        ({"dvc_experiment": "exp-a"}, {"student2_1step_psnr_vs_teacher": 60.0, "per_frame_latency_ms": 0.5}),
        ({"dvc_experiment": "exp-a"}, {"student2_1step_psnr_vs_teacher": 61.0}),  # newer: its PSNR counts
        ({**stage, "pipeline": "evaluation"}, {"student2_1step_psnr_vs_teacher": 70.0}),  # `dvc repro`
        ({**stage, "pipeline": "profiling"}, {"per_frame_latency_ms": 1.0}),
        ({**stage, "pipeline": "retrain"}, {"per_frame_latency_ms": 0.1}),  # left out
        ({**stage, "git_commit": "0000000", "pipeline": "data_curation"}, {"clips_kept": 12.0}),  # left out
        ({}, {"w8a8_psnr_db": 40.0}),  # no tags at all
    ]
    for start, (tags, metrics) in enumerate(runs):
        run_id = client.create_run(experiment, start_time=1_000_000 + 1000 * start, tags=tags).info.run_id
        for key, value in metrics.items():
            client.log_metric(run_id, key, value)
        client.set_terminated(run_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)

    nb = execute_notebook(notebook_in(project))

    assert not errors(nb)
    table = next(t for t in plain_texts(nb) if t.splitlines()[1].startswith("experiment"))
    assert table_column(table, "student2_1step_psnr_vs_teacher") == {
        "exp-a": "61.0",
        "smoke abcdef1 dv1": "70.0",
        "unknown unknown unknown": "NaN",
    }
    assert table_column(table, "per_frame_latency_ms") == {
        "exp-a": "0.5",
        "smoke abcdef1 dv1": "1.0",
        "unknown unknown unknown": "NaN",
    }
    assert "experiments: 3; best quality: smoke abcdef1 dv1; fastest: exp-a" in stdout(nb)
    assert len(images(nb)) >= 2
