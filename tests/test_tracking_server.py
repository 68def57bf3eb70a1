"""A real MLflow tracking server (SQLAlchemy/sqlite backend, proxied artifacts) records a `kedro run`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from conftest import copy_project, run_kedro, use_project
from mlflow import MlflowClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def tracking_server(root: Path) -> Iterator[str]:
    """`mlflow server` on sqlite in `root`, proxying artifacts to root/artifacts; yields its URL."""
    root.mkdir(parents=True)
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server"]
    command += ["--backend-store-uri", f"sqlite:///{root / 'server.db'}"]
    command += ["--artifacts-destination", str(root / "artifacts")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = root / "server.log"
    # Without its GenAI job runners: eight more processes this test does not need.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not answers(f"{url}/health"):
            assert server.poll() is None, f"mlflow server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"mlflow server did not answer:\n{log.read_text()}"
            time.sleep(0.5)
        yield url
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the group: the CLI and its uvicorn worker
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
                break


def test_a_smoke_run_is_recorded_on_a_tracking_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = copy_project(tmp_path / "project")
    previous_uri = mlflow.get_tracking_uri()
    try:
        with tracking_server(tmp_path / "server") as url:
            use_project(project, monkeypatch, url)
            run_kedro(project, pipeline="data_curation")

            client = MlflowClient(url)
            experiment = client.get_experiment_by_name("mobilei2v")
            assert experiment is not None
            # The server chose where artifacts go: its proxy, not a folder on this client's disk.
            assert experiment.artifact_location.startswith("mlflow-artifacts:")
            [run] = client.search_runs([experiment.experiment_id])
            assert run.info.status == "FINISHED"
            assert run.info.artifact_uri.startswith("mlflow-artifacts:")

            params = run.data.params
            assert params["synthetic.seed"] == "7" and params["curation.clips.height"] == "64"
            figures = json.loads((project / "data/08_reporting/data_curation.json").read_text())
            assert figures["clips_kept"] > 0
            assert run.data.metrics == pytest.approx({k: float(v) for k, v in figures.items()})
            tags = run.data.tags
            assert tags["kedro_env"] == "smoke" and tags["pipeline"] == "data_curation"
            assert tags["git_commit"] and tags["data_version"].startswith("synthetic-")

            names = {a.path for a in client.list_artifacts(run.info.run_id, "data_curation")}
            assert "data_curation/rejected_clips.csv" in names
            for artifact, local in [
                ("reports/data_curation.json", "data_curation.json"),
                ("data_curation/rejected_clips.csv", "rejected_clips.csv"),
            ]:
                downloaded = client.download_artifacts(run.info.run_id, artifact, str(tmp_path / "download"))
                assert Path(downloaded).read_bytes() == (project / "data/08_reporting" / local).read_bytes()
            # Stored by the server, and nothing in the project's local artifact folder.
            assert list((tmp_path / "server/artifacts").rglob("data_curation.json"))
            assert not (project / "mlartifacts").exists()
    finally:
        mlflow.set_tracking_uri(previous_uri)  # kedro-mlflow set it to the server, which is gone
    assert (tmp_path / "server/server.db").stat().st_size > 0
