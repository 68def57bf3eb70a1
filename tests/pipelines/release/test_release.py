"""The release of the smoke run: a registered model version that says what it is and where it came from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient


def test_a_registered_version_tagged_with_its_figures_commit_and_data(trained_project: Path, tracking_uri):
    release = json.loads((trained_project / "data/08_reporting/release.json").read_text())
    client = MlflowClient(tracking_uri)
    version = client.get_model_version("mobilei2v-student", str(int(release["registered_version"])))
    tags = version.tags
    assert tags["precision"] == "w8a8" and tags["steps"] == "1"
    assert {"git_commit", "data_version", "kedro_env"} <= set(tags)
    for figure in ("student2_1step_psnr_vs_teacher", "w8a8_psnr_db", "onnxruntime_w8a8_latency_ms"):
        assert math.isfinite(float(tags[figure]))
    assert any(k.startswith("qai_hub/") for k in tags)
    assert release["w8a8_psnr_db"] == float(tags["w8a8_psnr_db"])

    artifacts = {a.path for a in client.list_artifacts(version.run_id, "release/onnx/fp32")}
    assert "release/onnx/fp32/denoiser.onnx" in artifacts
    model = mlflow.pytorch.load_model(f"models:/mobilei2v-student/{version.version}")
    assert sum(p.numel() for p in model.parameters()) > 0
