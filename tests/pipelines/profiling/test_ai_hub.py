"""The Qualcomm AI Hub backend against qai_hub's own classes, mocked with their real signatures."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from pathlib import Path
from unittest.mock import Mock, create_autospec

import numpy as np
import pytest
import qai_hub
from qai_hub import public_api_pb2 as api_pb
from qai_hub.client import APIException, _profile_pb_to_python_dict

from mobilei2v_pipeline.pipelines.profiling.ai_hub import (
    NO_TOKEN,
    AIHubUnavailableError,
    parse_profile,
    profile_on_ai_hub,
    resolve_token,
)

SECRET = "tok-3f9a61c0-never-logged"
DEVICES = ["Samsung Galaxy S24 (Family)", "Snapdragon 8 Elite QRD"]
SUCCESS = qai_hub.JobStatus(qai_hub.JobStatus.State.SUCCESS)
FAILED = qai_hub.JobStatus(qai_hub.JobStatus.State.FAILED, "Failed to compile: op GridSample unsupported")
# A profile as InferenceJob.download_profile() returns it (qai_hub 0.56, profile format 1.2+):
# times in microseconds, memory in bytes as (lower, upper) ranges, one execution_detail entry per layer.
PROFILE = {
    "execution_summary": {
        "estimated_inference_time": 81234,
        "estimated_inference_peak_memory": 301989888,
        "first_load_time": 1520000,
        "first_load_peak_memory": 310378496,
        "warm_load_time": 210500,
        "warm_load_peak_memory": 205520896,
        "compile_time": 0,
        "compile_peak_memory": 0,
        "compile_memory_increase_range": (0, 0),
        "compile_memory_peak_range": (0, 0),
        "first_load_memory_increase_range": (150994944, 167772160),
        "first_load_memory_peak_range": (167772160, 184549376),
        "warm_load_memory_increase_range": (0, 4194304),
        "warm_load_memory_peak_range": (4194304, 37748736),
        "inference_memory_increase_range": (0, 2097152),
        "inference_memory_peak_range": (8388608, 62914560),
        "all_compile_times": [],
        "all_first_load_times": [1520000],
        "all_warm_load_times": [210500],
        "all_inference_times": [81234, 81002, 80990],
    },
    "execution_detail": [
        {"name": "/blocks.0/attn/qkv/Conv", "type": "Conv2d", "compute_unit": "NPU", "execution_time": 812},
        {
            "name": "/blocks.0/attn/Relu",
            "type": "ElementWiseNeuron",
            "compute_unit": "NPU",
            "execution_time": 96,
        },
        {"name": "/blocks.7/attn/Softmax", "type": "Softmax", "compute_unit": "GPU", "execution_time": 4210},
        {"name": "/t_embedder/Sin", "type": "Sin", "compute_unit": "CPU", "execution_time": 12},
    ],
}


@pytest.fixture(autouse=True)
def no_configured_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the environment nor a `qai-hub configure` file of this machine leaks into a test."""
    monkeypatch.delenv("QAI_HUB_API_TOKEN", raising=False)
    monkeypatch.setenv("QAIHUB_CLIENT_INI", str(tmp_path / "no_such_dir" / "client.ini"))


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    model = tmp_path / "onnx" / "denoiser_w8a8.onnx"
    model.parent.mkdir()
    model.write_bytes(b"not really onnx")
    rng = np.random.default_rng(0)
    return {
        "models": {"w8a8": {"denoiser": model}},
        "sample_inputs": {"denoiser": {"latent": rng.standard_normal((3, 4, 2, 2)).astype(np.float32)}},
        "reference_outputs": {"w8a8": {"denoiser": rng.standard_normal((3, 4, 2, 2)).astype(np.float32)}},
    }


def settings(**overrides: object) -> dict:
    return {
        "devices": DEVICES,
        "models": ["w8a8/denoiser"],
        "target_runtime": "qnn_context_binary",
        "compile_options": "",
        "profile_options": "",
        "inference_samples": 2,
        "require_hub": False,
        "connect_timeout_s": 5,
        "job_timeout_s": 60,
    } | overrides


def fake_client(reference: np.ndarray, failing_device: str | None = None, wait_error: bool = False) -> Mock:
    """A qai_hub.Client whose jobs succeed, except the compile job on `failing_device` (a FAILED status, or
    a client-side TimeoutError from wait() when `wait_error`). Device output = reference + 1e-3."""
    client = create_autospec(qai_hub.Client, instance=True)
    client.get_devices.side_effect = lambda name="", os="", attributes=None: [
        qai_hub.Device(name, "14"),
        qai_hub.Device(name, "15"),
    ]
    ids = (f"j{n:04d}" for n in itertools.count(1))

    def job(cls: type, status: qai_hub.JobStatus) -> Mock:
        mock = create_autospec(cls, instance=True)
        mock.job_id, mock.hub_version = next(ids), "aihub-2.39"
        mock.wait.return_value = status
        return mock

    def compile_job(model, device, name=None, options="", **_: object) -> Mock:
        failing = device.name == failing_device
        compiled = job(qai_hub.CompileJob, FAILED if failing else SUCCESS)
        if failing and wait_error:
            compiled.wait.side_effect = TimeoutError("Waiting for compile job timed out")
        compiled.download_job_logs.side_effect = lambda output_dir: [write(Path(output_dir) / "hub.log")]
        target = create_autospec(qai_hub.Model, instance=True)
        target.download.side_effect = lambda filename, timeout=None: write(Path(filename + ".bin"))
        compiled.get_target_model.return_value = target
        return compiled

    def inference_job(model, device, inputs=None, name=None, options="", profile=True, **_: object) -> Mock:
        if profile:
            profiled = job(qai_hub.ProfileJob, SUCCESS)
            profiled.download_profile.return_value = PROFILE
            return profiled
        ran = job(qai_hub.InferenceJob, SUCCESS)
        ran.download_output_data.return_value = {
            "output_0": [reference[i : i + 1] + np.float32(1e-3) for i in range(len(inputs["latent"]))]
        }
        return ran

    client.submit_compile_job.side_effect = compile_job
    client.submit_inference_job.side_effect = inference_job
    return client


def write(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"artifact")
    return str(path)


def run(inputs: dict, artifacts: Path, client: Mock | None = None, **overrides: object) -> list[dict]:
    return profile_on_ai_hub(**inputs, settings=settings(**overrides), artifacts_dir=artifacts, client=client)


def test_success_on_two_devices(inputs: dict, tmp_path: Path) -> None:
    reference = inputs["reference_outputs"]["w8a8"]["denoiser"]
    client = fake_client(reference)
    rows = run(inputs, tmp_path / "hub", client)

    assert [row["device"] for row in rows] == DEVICES
    assert all(row["status"] == "ok" and row["device_os"] == "15" for row in rows)
    compile_call = client.submit_compile_job.call_args_list[0].kwargs
    assert compile_call["model"] == inputs["models"]["w8a8"]["denoiser"]
    assert compile_call["options"] == "--target_runtime qnn_context_binary"
    sent = next(
        c.kwargs["inputs"] for c in client.submit_inference_job.call_args_list if "inputs" in c.kwargs
    )
    assert [a.shape for a in sent["latent"]] == [(1, 4, 2, 2)] * 2
    peak = reference[:2].max() - reference[:2].min()
    for row in rows:
        assert row["inference_psnr_db"] == pytest.approx(10 * np.log10(peak**2 / 1e-6), abs=0.05)
        assert row["estimated_inference_ms"] == pytest.approx(81.234)
        assert {row["compile_job_id"], row["profile_job_id"], row["inference_job_id"]} <= {
            f"j{n:04d}" for n in range(1, 7)
        }
        assert (tmp_path / "hub" / row["compiled_model"]).read_bytes() == b"artifact"
        assert row["compiled_model"].endswith("_w8a8_denoiser.bin")
    assert len(list((tmp_path / "hub" / "profiles").glob("*.json"))) == 2
    assert sorted(p.name for p in (tmp_path / "hub").rglob(".*")) == []  # each download renamed into place


@pytest.mark.parametrize("wait_error", [False, True], ids=["failed-status", "client-timeout"])
def test_job_failure_on_one_device_lets_the_other_go_on(
    inputs: dict, tmp_path: Path, wait_error: bool
) -> None:
    client = fake_client(inputs["reference_outputs"]["w8a8"]["denoiser"], DEVICES[0], wait_error)
    failed, ok = run(inputs, tmp_path / "hub", client)

    job_id = failed["compile_job_id"]
    assert failed["status"].startswith("failed: ") and failed["status"].endswith(f"(compile job {job_id})")
    assert "profile_job_id" not in failed and ok["status"] == "ok"
    record = json.loads((tmp_path / "hub" / "failed_jobs" / f"{job_id}.json").read_text())
    assert record["device"] == DEVICES[0] and record["kind"] == "compile"
    if wait_error:
        assert record["status"] == "TIMEOUT" and record["logs"] == []
    else:
        assert record["status"] == "FAILED" and record["message"] == FAILED.message
        assert record["logs"] == [f"failed_jobs/{job_id}_logs/hub.log"]


def test_no_token_skips_fast_without_a_client(inputs: dict, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(qai_hub, "Client", Mock(side_effect=AssertionError("no client without a token")))
    rows = run(inputs, tmp_path / "hub")  # no client is made, so nothing can wait on the network

    assert [(row["device"], row["status"]) for row in rows] == [(name, NO_TOKEN) for name in DEVICES]
    with pytest.raises(
        RuntimeError, match=r"no AI Hub token.*credentials\.yml.*QAI_HUB_API_TOKEN.*configure"
    ):
        run(inputs, tmp_path / "hub", require_hub=True)


def test_connect_timeout_names_ai_hub_and_returns_fast(inputs: dict, tmp_path: Path) -> None:
    release = threading.Event()
    client = create_autospec(qai_hub.Client, instance=True)
    client.get_devices.side_effect = lambda **_: release.wait(60)  # a hub that never answers in the test
    try:
        rows = run(inputs, tmp_path / "hub", client, connect_timeout_s=0.05)
        with pytest.raises(AIHubUnavailableError, match=r"Qualcomm AI Hub did not answer within 0\.05 s"):
            run(inputs, tmp_path / "hub", client, connect_timeout_s=0.05, require_hub=True)
        # Both returned while the client was still waiting: the run does not wait for an answer.
        assert not release.is_set() and client.get_devices.call_count == 2
    finally:
        release.set()
    assert all("failed: Qualcomm AI Hub did not answer" in row["status"] for row in rows)


def test_bad_token_is_reported_without_the_token(inputs: dict, tmp_path: Path, monkeypatch, caplog) -> None:
    def unauthorized(config, *args, **kwargs):
        raise APIException(status_code=401)

    # The real client, with the server's 401 answered offline: its own error translation runs.
    monkeypatch.setattr(qai_hub.public_rest_api, "get_device_list", unauthorized)
    monkeypatch.setenv("QAI_HUB_API_TOKEN", SECRET)
    rows = run(inputs, tmp_path / "hub")
    with pytest.raises(AIHubUnavailableError, match="rejected the API token") as raised:
        run(inputs, tmp_path / "hub", require_hub=True)

    assert all(row["status"].startswith("failed: Qualcomm AI Hub rejected the API token") for row in rows)
    assert SECRET not in str(raised.value) + json.dumps(rows) + caplog.text


def test_token_never_reaches_rows_files_or_logs(inputs: dict, tmp_path: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = fake_client(inputs["reference_outputs"]["w8a8"]["denoiser"], DEVICES[1])
    client_class = Mock(return_value=client)
    monkeypatch.setattr(qai_hub, "Client", client_class)
    monkeypatch.setenv("QAI_HUB_API_TOKEN", SECRET)
    rows = run(inputs, tmp_path / "hub")

    assert client_class.call_args.kwargs["config"].api_token == SECRET
    assert [row["status"] == "ok" for row in rows] == [True, False]
    files = [path.read_bytes() for path in (tmp_path / "hub").rglob("*") if path.is_file()]
    assert files and "submitted" in caplog.text
    assert SECRET not in json.dumps(rows) + caplog.text
    assert not any(SECRET.encode() in content for content in files)


def test_resolve_token_env_then_client_ini(tmp_path: Path, monkeypatch) -> None:
    assert resolve_token() is None
    ini = tmp_path / "client.ini"
    ini.write_text("[api]\napi_token = from-ini\napi_url = https://workbench.aihub.qualcomm.com\n")
    monkeypatch.setenv("QAIHUB_CLIENT_INI", str(ini))
    assert resolve_token() == "from-ini"
    monkeypatch.setenv("QAI_HUB_API_TOKEN", "from-env")
    assert resolve_token() == "from-env"


def test_parse_profile() -> None:
    assert parse_profile(PROFILE) == {
        "estimated_inference_ms": pytest.approx(81.234),
        "peak_memory_mb": pytest.approx(60.0),
        "first_load_ms": pytest.approx(1520.0),
        "warm_load_ms": pytest.approx(210.5),
        "layers_npu": 2,
        "layers_gpu": 1,
        "layers_cpu": 1,
    }


def test_parse_profile_reads_what_qai_hub_builds() -> None:
    """The same figures from a profile made by qai_hub's own protobuf-to-dict conversion."""
    detail = api_pb.ProfileDetail(major_version=1, minor_version=2, execution_time=4500, cold_load_time=90000)
    detail.execution_memory.peak.lower, detail.execution_memory.peak.upper = 1, 3 * 2**20
    detail.layer_details.append(api_pb.LayerDetail(name="conv", compute_unit=api_pb.COMPUTE_UNIT_NPU))
    figures = parse_profile(_profile_pb_to_python_dict(detail))

    assert figures["estimated_inference_ms"] == pytest.approx(4.5)
    assert figures["first_load_ms"] == pytest.approx(90.0)
    assert figures["peak_memory_mb"] == pytest.approx(3.0)
    assert (figures["layers_npu"], figures["layers_cpu"]) == (1, 0)
