"""Profiling of the smoke run in ONNX Runtime, and the AI Hub rows without a token or with one it cannot
use: the run goes on (or stops when AI Hub is required) and the token is never written anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import onnx
import pandas as pd
import pytest
from conftest import load_arrays, run_kedro, use_project

from mobilei2v_pipeline.onnx_runtime import peak_memory_mb
from mobilei2v_pipeline.pipelines.profiling.ai_hub import NO_TOKEN
from mobilei2v_pipeline.pipelines.profiling.onnxruntime import operator_times

REPORTS = Path("data/08_reporting")
MEASURED = REPORTS / "measured"


def test_onnxruntime_figures_of_every_graph_and_the_per_frame_latency(trained_project: Path):
    table = pd.read_csv(trained_project / MEASURED / "onnxruntime_profile.csv")
    assert set(zip(table["precision"], table["graph"], strict=True)) >= {
        ("fp32", "denoiser"),
        ("w8a8", "denoiser"),
        ("w8a16", "denoiser"),
        ("fp32", "decoder"),
        ("fp32", "light_decoder"),
    }
    assert (table["p90_ms"] >= table["median_ms"]).all() and (table["median_ms"] > 0).all()
    assert (table["peak_memory_mb"] > 0).all()
    figures = json.loads((trained_project / MEASURED / "profiling.json").read_text())
    rows = table.set_index(["precision", "graph"])["median_ms"]
    frames = load_arrays(trained_project / "data/07_model_output/torch_outputs.npz")["decoder"].shape[2]
    assert figures["per_frame_latency_ms"] == pytest.approx(
        (rows["w8a8", "denoiser"] + rows["fp32", "decoder"]) / frames, rel=1e-4
    )
    assert figures["onnxruntime_fp32_latency_ms"] == pytest.approx(rows["fp32", "denoiser"], rel=1e-4)
    assert figures["onnxruntime_w8a8_latency_ms"] == pytest.approx(rows["w8a8", "denoiser"], rel=1e-4)
    # The versioned figures are the ones no clock sets: here, that AI Hub profiled on no device.
    assert json.loads((trained_project / REPORTS / "profiling.json").read_text()) == {
        "qai_hub_profiled_devices": 0
    }
    operators = pd.read_csv(trained_project / MEASURED / "onnxruntime_operators.csv")
    assert "Conv" in set(operators[operators["graph"] == "denoiser"]["op_type"])


def test_operator_times_and_peak_memory_of_a_real_graph(trained_project: Path):
    model = onnx.load(trained_project / "data/06_models/onnx/fp32/light_decoder.onnx")
    samples = load_arrays(trained_project / "data/05_model_input/export_samples.npz")["light_decoder"]
    inputs = {k: v[:1] for k, v in samples.items()}
    ops = operator_times(model, inputs, threads=1, runs=2)
    assert ops["share"].sum() == pytest.approx(1.0)
    assert {"Conv", "DepthToSpace"} <= set(ops["op_type"])  # convolutions, then the pixel shuffle
    assert 0 < peak_memory_mb(model, inputs, threads=1, runs=1) < 2000


def test_without_a_token_ai_hub_rows_say_so_and_the_run_succeeds(trained_project: Path):
    rows = pd.read_csv(trained_project / REPORTS / "ai_hub_profile.csv")
    assert len(rows) == 3 * 5  # devices x configured models
    assert (rows["status"] == NO_TOKEN).all()
    assert (trained_project / "data/07_model_output/ai_hub/rows.csv").is_file()


@pytest.fixture
def profiled_copy(trained_project: Path, tmp_path: Path, monkeypatch, tracking_uri: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(trained_project, project, symlinks=True)
    use_project(project, monkeypatch, tracking_uri)
    # Empty is no token. Set (not deleted) so that the token the hook exports from a test's credentials is
    # removed again after the test: a deleted variable would be restored to what the hook set.
    monkeypatch.setenv("QAI_HUB_API_TOKEN", "")
    monkeypatch.setenv("QAIHUB_CLIENT_INI", str(tmp_path / "no-client.ini"))
    return project


def test_require_hub_without_a_token_fails_with_that_message(profiled_copy: Path):
    with pytest.raises(Exception, match="no AI Hub token"):
        run_kedro(
            profiled_copy, pipeline="profiling", params={"profiling": {"qai_hub": {"require_hub": True}}}
        )


def test_a_token_from_credentials_that_ai_hub_cannot_take_fails_cleanly_and_is_never_written(
    profiled_copy: Path, monkeypatch, caplog
):
    token = "s3cr3t-token-for-the-test"
    (profiled_copy / "conf/local/credentials.yml").write_text(f"qai_hub:\n  api_token: {token}\n")
    # No network here: AI Hub cannot answer within the timeout, so every row fails with a message.
    run_kedro(
        profiled_copy, pipeline="profiling", params={"profiling": {"qai_hub": {"connect_timeout_s": 1}}}
    )
    rows = pd.read_csv(profiled_copy / REPORTS / "ai_hub_profile.csv")
    assert rows["status"].str.contains("Qualcomm AI Hub").all(), rows["status"].unique()
    assert not (rows["status"] == NO_TOKEN).any()
    written = [p.read_bytes() for p in profiled_copy.rglob("*") if p.is_file() and "conf" not in p.parts]
    assert not [b for b in written if token.encode() in b]
    assert token not in caplog.text
    run = mlflow.search_runs(experiment_names=["mobilei2v"], order_by=["start_time DESC"], max_results=1)
    assert not [c for c in run.columns if token in str(run[c].iloc[0])]


def test_per_frame_latency_is_steps_times_the_denoiser_plus_the_decoder_over_frames():
    from mobilei2v_pipeline.pipelines.profiling.nodes import measured_profiling_figures, profiling_metrics

    table = pd.DataFrame(
        [
            ("fp32", "denoiser", 10.0),
            ("w8a8", "denoiser", 4.0),
            ("fp32", "decoder", 30.0),
            ("fp32", "light_decoder", 2.0),
        ],
        columns=["precision", "graph", "median_ms"],
    ).assign(p90_ms=1.0, peak_memory_mb=1.0)
    outputs = {"fp32": {"decoder": np.zeros((1, 3, 9, 4, 4))}}
    hub = pd.DataFrame(
        [
            {
                "device": "A",
                "precision": "w8a8",
                "component": "denoiser",
                "status": "ok",
                "estimated_inference_ms": 3.0,
                "peak_memory_mb": 5.0,
                "inference_psnr_db": 40.0,
            }
        ]
    )
    deployed = {"deployed": {"precision": "w8a8", "steps": 2}}
    measured = measured_profiling_figures(table, hub, outputs, deployed)
    assert measured["per_frame_latency_ms"] == pytest.approx((2 * 4.0 + 30.0) / 9)
    assert measured["light_per_frame_latency_ms"] == pytest.approx((2 * 4.0 + 2.0) / 9)
    assert measured["onnxruntime_w8a8_latency_ms"] == 4.0
    assert measured["qai_hub_a_w8a8_denoiser_estimated_inference_ms"] == 3.0
    assert measured["qai_hub_a_w8a8_denoiser_peak_memory_mb"] == 5.0
    # The device's fidelity is no clock's: it is versioned with the count of devices.
    figures = profiling_metrics(hub)
    assert figures == {"qai_hub_profiled_devices": 1, "qai_hub_a_w8a8_denoiser_inference_psnr_db": 40.0}
    assert not set(figures) & set(measured)
