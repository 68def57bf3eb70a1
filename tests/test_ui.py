"""`make ui` / `mobilei2v ui`: the MLflow UI and kedro-viz, started and stopped together."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import REPO
from mlflow import MlflowClient

from mobilei2v_pipeline.ui import UIError, serve_ui


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports below 49152 (kedro-viz refuses higher ones)."""
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 49152:
            ports.add(port)
    return sorted(ports)


def get(url: str) -> tuple[int, bytes]:
    """Status and body, or (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except OSError:
        return 0, b""


def test_ui_serves_mlflow_and_kedro_viz_until_interrupted(project: Path, tracking_uri: str, tmp_path: Path):
    experiment = f"ui-{uuid.uuid4().hex[:8]}"
    MlflowClient(tracking_uri).create_experiment(experiment)  # the UI must show the project's store
    mlflow_port, viz_port = free_ports(2)
    command = [str(Path(sys.executable).parent / "mobilei2v"), "ui"]
    command += ["--mlflow-port", str(mlflow_port), "--viz-port", str(viz_port)]
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    mlflow_url, viz_url = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{viz_port}"
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops both" not in log.read_text():  # printed once both answered
            assert process.poll() is None, f"mobilei2v ui exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the UIs did not answer:\n{log.read_text()}"
            time.sleep(0.5)
        assert f"{mlflow_url}/" in log.read_text() and f"{viz_url}/" in log.read_text()

        assert get(f"{mlflow_url}/health") == (200, b"OK") and get(f"{mlflow_url}/")[0] == 200
        status, body = get(f"{mlflow_url}/ajax-api/2.0/mlflow/experiments/search?max_results=1000")
        assert status == 200 and experiment in {e["name"] for e in json.loads(body)["experiments"]}
        assert get(f"{viz_url}/")[0] == 200
        graph = json.loads(get(f"{viz_url}/api/main")[1])
        assert {"__default__", "data_curation", "teacher"} <= {p["id"] for p in graph["pipelines"]}
        assert {"curate_videos", "collect_clips"} <= {node["name"] for node in graph["nodes"]}

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, log.read_text()
        assert get(f"{mlflow_url}/health")[0] == 0 and get(f"{viz_url}/api/main")[0] == 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_ui_refuses_a_port_in_use(project: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UIError, match=f"port {port}.*in use"):
            serve_ui(project, mlflow_port=port, viz_port=free_ports(1)[0])


def test_make_ui_runs_mobilei2v_ui():
    result = subprocess.run(["make", "-n", "ui"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "mobilei2v ui" in result.stdout
