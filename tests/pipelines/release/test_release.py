"""The release of the smoke run: a registered model version that says what it is and where it came from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient


def test_a_registered_version_tagged_with_its_figures_commit_and_data(trained_project: Path, tracking_uri):
    release = json.loads((trained_project / "data/08_reporting/release.json").read_text())
    client = MlflowClient(tracking_uri)
    version = client.get_model_version("mobilei2v-student", str(int(release["challenger_version"])))
    tags = version.tags
    assert tags["precision"] == "w8a8" and tags["steps"] == "1"
    assert {"git_commit", "data_version", "kedro_env"} <= set(tags)
    for figure in ("student2_1step_psnr_vs_teacher", "w8a8_psnr_db", "onnxruntime_w8a8_latency_ms"):
        assert math.isfinite(float(tags[figure]))
    assert any(k.startswith("qai_hub/") for k in tags)
    assert release["challenger_w8a8_psnr_db"] == float(tags["w8a8_psnr_db"])

    artifacts = {a.path for a in client.list_artifacts(version.run_id, "release/onnx/fp32")}
    assert "release/onnx/fp32/denoiser.onnx" in artifacts
    model = mlflow.pytorch.load_model(f"models:/mobilei2v-student/{version.version}")
    assert sum(p.numel() for p in model.parameters()) > 0


def test_the_gate_decides_and_moves_the_champion_alias_only_on_promotion(trained_project: Path, tracking_uri):
    release = json.loads((trained_project / "data/08_reporting/release.json").read_text())
    gate = pd.read_csv(trained_project / "data/08_reporting/release_gate.csv")
    assert set(gate["figure"]) == {
        "student2_1step_psnr_vs_teacher",
        "student2_1step_ssim_vs_teacher",
        "w8a8_video_psnr_db",
        "per_frame_latency_ms",
    }
    assert release["promoted"] == int(gate["passed"].all())
    client = MlflowClient(tracking_uri)
    version = client.get_model_version("mobilei2v-student", str(int(release["challenger_version"])))
    assert version.tags["decision"] == ("promoted" if release["promoted"] else "rejected")
    assert version.tags["decision_reason"].startswith(version.tags["decision"])
    champion = client.get_model_version_by_alias("mobilei2v-student", "champion")
    if release["promoted"]:
        assert champion.version == version.version
    else:
        assert int(champion.version) == release["champion_version"]


def test_the_model_card_lists_every_program_the_release_logged(trained_project: Path, tracking_uri):
    release = json.loads((trained_project / "data/08_reporting/release.json").read_text())
    client = MlflowClient(tracking_uri)
    version = client.get_model_version("mobilei2v-student", str(int(release["challenger_version"])))
    card = (trained_project / "data/08_reporting/model_card.md").read_text()
    assert version.description == card  # the registered version says what the card says

    def files(path: str) -> list[str]:
        found = []
        for entry in client.list_artifacts(version.run_id, path):
            if entry.path.endswith(".mlpackage"):
                found.append(entry.path)  # a package is one program, a folder
            elif entry.is_dir:
                found += files(entry.path)
            else:
                found.append(entry.path)
        return found

    programs = [p for p in files("release") if p.endswith((".onnx", ".pte", ".mlpackage"))]
    assert {p.split("/")[1] for p in programs} == {"onnx", "executorch", "coreml"}
    assert "release/executorch/w8a8/denoiser.pte" in programs
    rows = [line for line in card.splitlines() if line.startswith("| ") and "`release/" in line]
    assert sorted(row.split("`")[1] for row in rows) == sorted(programs)
    assert "release/model_card.md" in files("release")
    for section in ("## What it is", "## Programs", "## Quality", "## How it was made", "## Limits"):
        assert section in card
    assert "not measured" in card and "Core ML" in card  # what was not measured on a device is said
