"""`mobilei2v retrain` end to end on the smoke env, as a scheduler calls it: the real command, DVC and MLflow.

The tests share one project and run in file order, each starting from the state the one before left: a first
retrain promotes, a second does nothing, the lock refuses a concurrent one, a new target device re-profiles,
a worse challenger is rejected, and new raw videos rerun the chain through a retrain killed midway.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import init_dvc_repo, without_app_programs
from mlflow.tracking import MlflowClient

from mobilei2v_pipeline.retrain import BUSY, KEPT, PROMOTED, retrain_lock

MODEL = "mobilei2v-student"
BIN = Path(sys.executable).parent
RELEASE = Path("data/08_reporting/release.json")


@pytest.fixture(scope="module")
def scheduled(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the trained smoke project under git and DVC, with its outputs recorded in dvc.lock and a
    registry of its own. The app programs are left out of the export: the retrain does not depend on them."""
    root = tmp_path_factory.mktemp("scheduled")
    project = shutil.copytree(trained_project, root / "project")
    without_app_programs(project)
    init_dvc_repo(project)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        monkeypatch.setenv("KEDRO_ENV", "smoke")
        monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
        subprocess.run([BIN / "dvc", "commit", "--force", "--quiet"], cwd=project, check=True)
        yield project


def _retrain(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [BIN / "mobilei2v", "retrain", *args], cwd=project, capture_output=True, text=True, timeout=900
    )
    result.output = result.stdout + result.stderr
    return result


def _client() -> MlflowClient:
    return MlflowClient(os.environ["MLFLOW_TRACKING_URI"])


def _champion() -> str:
    return str(_client().get_model_version_by_alias(MODEL, "champion").version)


def _retrain_runs() -> list:
    client = _client()
    experiment = client.get_experiment_by_name("mobilei2v")
    return client.search_runs(
        [experiment.experiment_id], "tags.pipeline = 'retrain'", order_by=["attribute.start_time DESC"]
    )


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_a_first_retrain_promotes_the_model_and_pushes_it(scheduled: Path):
    result = _retrain(scheduled)
    assert result.returncode == PROMOTED, result.output
    release = json.loads((scheduled / RELEASE).read_text())
    assert release["promoted"] == 1 and release["champion_version"] == 0
    assert _champion() == str(release["challenger_version"])
    assert release["challenger_student2_1step_psnr_vs_teacher"] > 0

    run = _retrain_runs()[0]
    assert run.data.tags["outcome"] == "promoted" and run.data.tags["exit_code"] == "0"
    assert run.data.tags["stages_run"] == "release"  # up to date, but never judged by this registry
    assert run.data.tags["kedro_env"] == "smoke" and len(run.data.tags["git_commit"]) == 40
    assert run.data.tags["data_version"].startswith("synthetic-")
    artifacts = {a.path for a in _client().list_artifacts(run.info.run_id, "retrain")}
    assert {"retrain/retrain_report.md", "retrain/release.json", "retrain/release_gate.csv"} <= artifacts
    report = (scheduled / "data/08_reporting/retrain_report.md").read_text()
    assert report.startswith("# Retrain") and ": promoted" in report and "against no champion" in report
    assert any(p.is_file() for p in (scheduled / ".dvc_remote").rglob("*")), "nothing pushed to the remote"


def test_a_retrain_with_nothing_new_does_nothing(scheduled: Path):
    before = ((scheduled / RELEASE).stat().st_mtime_ns, len(_retrain_runs()), _champion())
    result = _retrain(scheduled)
    assert result.returncode == KEPT, result.output
    assert "nothing changed" in result.output
    assert "Running stage" not in result.output
    assert ((scheduled / RELEASE).stat().st_mtime_ns, len(_retrain_runs()), _champion()) == before


def test_a_second_retrain_refuses_the_lock_of_a_running_one(scheduled: Path):
    with retrain_lock(scheduled / ".retrain.lock"):
        result = _retrain(scheduled)
        assert result.returncode == BUSY, result.output
        assert "another retrain holds" in result.output and f"pid {os.getpid()}" in result.output
        waited = _retrain(scheduled, "--wait", "1")
        assert waited.returncode == BUSY and "after waiting 1 s" in waited.output
    assert _retrain(scheduled).returncode == KEPT  # free again: nothing changed


def test_a_new_target_device_re_profiles_without_retraining(scheduled: Path):
    champion = _champion()
    _edit(
        scheduled / "conf/base/parameters_profiling.yml",
        '"Snapdragon 8 Elite QRD"]',
        '"Snapdragon 8 Elite QRD", "Snapdragon X Elite CRD"]',
    )
    result = _retrain(scheduled)
    assert result.returncode == PROMOTED, result.output  # the same model: every figure within tolerance
    stages = _retrain_runs()[0].data.tags["stages_run"].split(",")
    assert set(stages) <= {"quantization", "export", "profiling", "release"} and "profiling" in stages
    new = _client().get_model_version(MODEL, _champion())
    assert str(new.version) != champion
    assert any(k.startswith("qai_hub/snapdragon_x_elite_crd/") for k in new.tags), sorted(new.tags)


def test_a_worse_challenger_is_rejected_and_the_champion_keeps_its_alias(scheduled: Path):
    champion = _champion()
    # W8A8 with 4-bit weights and nothing kept in float: the deployed graph far from the fp32 one.
    params = scheduled / "conf/base/parameters_quantization.yml"
    _edit(params, "w8a8: {weights: QInt8,", "w8a8: {weights: QInt4,")
    _edit(params, "keep_float_ops: [ReduceMean, Pow, Sqrt, Reciprocal, Div, Softmax]", "keep_float_ops: []")
    _edit(params, "keep_float_modules: [timestep_embedder, motion_embedder]", "keep_float_modules: []")
    result = _retrain(scheduled)
    assert result.returncode == KEPT, result.output
    assert _champion() == champion
    release = json.loads((scheduled / RELEASE).read_text())
    assert release["promoted"] == 0 and release["champion_version"] == int(champion)
    assert release["challenger_w8a8_video_psnr_db"] < release["champion_w8a8_video_psnr_db"] - 1.0
    gate = pd.read_csv(scheduled / "data/08_reporting/release_gate.csv").set_index("figure")
    assert not gate.loc["w8a8_video_psnr_db", "passed"]
    version = _client().get_model_version(MODEL, str(release["challenger_version"]))
    assert version.tags["decision"] == "rejected"
    assert version.tags["decision_reason"].startswith("rejected: w8a8_video_psnr_db")
    run = _retrain_runs()[0]
    assert run.data.tags["outcome"] == "kept" and run.data.tags["exit_code"] == str(KEPT)
    assert run.data.tags["stages_run"] == "quantization,profiling,release"
    assert "rejected" in (scheduled / "data/08_reporting/retrain_report.md").read_text()
    subprocess.run(["git", "checkout", "-q", str(params)], cwd=scheduled, check=True)


def test_new_raw_videos_rerun_the_chain_even_through_a_killed_retrain(scheduled: Path):
    champion = _champion()
    challenger = json.loads((scheduled / RELEASE).read_text())["challenger_version"]
    new_videos = [
        BIN / "mobilei2v",
        "synthesize",
        "--out",
        "data/01_raw/videos",
        "--env",
        "smoke",
        "--seed",
        "3",
    ]
    subprocess.run(new_videos, cwd=scheduled, check=True, capture_output=True)

    log = scheduled.parent / "killed_retrain.log"
    with log.open("w") as out:
        killed = subprocess.Popen(
            [BIN / "mobilei2v", "retrain"],
            cwd=scheduled,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while "Running stage 'autoencoder'" not in log.read_text():
            assert killed.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        os.killpg(killed.pid, signal.SIGKILL)  # the whole job, as a scheduler cancels it
        killed.wait()
    assert _champion() == champion
    with retrain_lock(scheduled / ".retrain.lock"):  # the kernel released the dead retrain's lock
        pass

    result = _retrain(scheduled)
    assert result.returncode in (PROMOTED, KEPT), result.output
    run = _retrain_runs()[0]
    stages = run.data.tags["stages_run"].split(",")
    assert stages[0] == "autoencoder" and stages[-1] == "release", stages  # curation was done already
    assert run.data.tags["data_version"].startswith("raw-")  # the user's videos replaced the generator's
    release = json.loads((scheduled / RELEASE).read_text())
    assert release["challenger_version"] > challenger
    assert release["promoted"] == int(result.returncode == PROMOTED)
    assert _champion() == (str(release["challenger_version"]) if release["promoted"] else champion)
