"""The Qualcomm AI Hub backend of the profiling stage: each exported ONNX model is compiled for Snapdragon
devices, profiled on them, and run there on sample inputs whose outputs are compared with ONNX Runtime's.

Without an API token every row says NO_TOKEN and nothing touches the network. The token is read here and
handed to the qai_hub client only: it never reaches a log line, an exception, a row or a file."""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np
import qai_hub
from qai_hub.api_utils import get_config_path
from qai_hub.client import APIException

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.psnr import psnr_db
from mobilei2v_pipeline.text import slug

logger = logging.getLogger(__name__)

NO_TOKEN = "skipped: no AI Hub token"
TOKEN_ENV = "QAI_HUB_API_TOKEN"
HUB = "Qualcomm AI Hub"
TOKEN_HELP = (
    "set qai_hub.api_token in conf/local/credentials.yml, export QAI_HUB_API_TOKEN, "
    "or run `qai-hub configure --api_token <token>`"
)
# What a failed request to AI Hub raises (the client turns HTTP and connection errors into qai_hub.Error);
# anything else is a bug here and should stop the run.
HUB_ERRORS = (qai_hub.Error, APIException, TimeoutError, OSError)
COMPUTE_UNITS = ("NPU", "GPU", "CPU")
BYTES_PER_MB = 2**20
US_PER_MS = 1000.0

T = TypeVar("T")


class AIHubUnavailableError(RuntimeError):
    """AI Hub cannot serve this run: no token, a rejected token, or no answer."""


class _StepFailed(Exception):
    """One device/model combination failed; the others go on."""


@dataclass(frozen=True)
class _Target:
    precision: str
    component: str
    model: Path


@dataclass(frozen=True)
class _Session:
    client: qai_hub.Client
    settings: dict
    artifacts_dir: Path
    sample_inputs: dict[str, dict[str, np.ndarray]]
    reference_outputs: dict[str, dict[str, np.ndarray]]

    @property
    def job_timeout_s(self) -> int:
        return int(self.settings["job_timeout_s"])


@dataclass(frozen=True)
class _Task:
    session: _Session
    device: qai_hub.Device
    target: _Target

    @property
    def label(self) -> str:
        return f"{self.target.precision} {self.target.component} on {self.device.name}"

    @property
    def stem(self) -> str:
        return f"{slug(self.device.name)}_{self.target.precision}_{self.target.component}"


def resolve_token() -> str | None:
    """The AI Hub API token: the QAI_HUB_API_TOKEN environment variable (a project hook exports it from
    conf/local/credentials.yml), else the api_token of the file `qai-hub configure` writes
    (~/.qai_hub/client.ini, or the path in QAIHUB_CLIENT_INI), else None."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or _token_from_client_ini()


def _token_from_client_ini() -> str | None:
    parser = configparser.ConfigParser()
    try:
        parser.read(get_config_path())
    except configparser.Error:
        logger.warning("the qai-hub client config file %s is unreadable; ignoring it", get_config_path())
        return None
    return parser.get("api", "api_token", fallback="").strip() or None


def profile_on_ai_hub(
    models: dict[str, dict[str, Path]],
    sample_inputs: dict[str, dict[str, np.ndarray]],
    reference_outputs: dict[str, dict[str, np.ndarray]],
    settings: dict,
    artifacts_dir: Path,
    client: qai_hub.Client | None = None,
) -> list[dict]:
    """Compile, profile and run each configured precision x component model on each configured device.

    One row per (device, precision, component). Rows say NO_TOKEN without a token, and "failed: ..." when AI
    Hub cannot be reached or a job fails; with `settings["require_hub"]` the first two raise instead.
    """
    targets = _targets(models, settings)
    devices = list(settings["devices"])
    if client is None:
        token = resolve_token()
        if token is None:
            error = AIHubUnavailableError(f"{NO_TOKEN}: {HUB} profiling needs an API token; {TOKEN_HELP}")
            return _unavailable(error, NO_TOKEN, devices, targets, settings)
        client = qai_hub.Client(config=qai_hub.ClientConfig(api_token=token))
    try:
        resolved = _connect(client, devices, float(settings["connect_timeout_s"]))
    except AIHubUnavailableError as error:
        return _unavailable(error, f"failed: {error}", devices, targets, settings)
    session = _Session(client, settings, Path(artifacts_dir), sample_inputs, reference_outputs)
    return [_profile_target(session, name, resolved[name], target) for name in devices for target in targets]


def _targets(models: dict[str, dict[str, Path]], settings: dict) -> list[_Target]:
    """The configured "<precision>/<component>" models, in config order."""
    targets = []
    for key in settings["models"]:
        precision, component = key.split("/")
        model = models.get(precision, {}).get(component)
        if model is None:
            raise ValueError(
                f"profiling.qai_hub asks for the {precision} {component} model, which is missing"
            )
        targets.append(_Target(precision, component, Path(model)))
    return targets


def _row(device_name: str, target: _Target, settings: dict, status: str) -> dict:
    return {
        "device": device_name,
        "precision": target.precision,
        "component": target.component,
        "target_runtime": settings["target_runtime"],
        "status": status,
    }


def _unavailable(
    error: AIHubUnavailableError, status: str, devices: list[str], targets: list[_Target], settings: dict
) -> list[dict]:
    if settings["require_hub"]:
        raise error
    logger.warning("%s", error)
    return [_row(name, target, settings, status) for name in devices for target in targets]


def _connect(client: qai_hub.Client, names: list[str], timeout_s: float) -> dict[str, qai_hub.Device | None]:
    """Each device name resolved to AI Hub's device with the newest OS (None if AI Hub has no such device)."""
    try:
        return _call_with_timeout(
            lambda: {name: _newest(client.get_devices(name=name)) for name in names}, timeout_s
        )
    except TimeoutError as exc:
        raise AIHubUnavailableError(
            f"{HUB} did not answer within {timeout_s:g} s (network or service unreachable)"
        ) from exc
    except qai_hub.UserError as exc:
        raise AIHubUnavailableError(_refusal(exc)) from exc
    except HUB_ERRORS as exc:
        raise AIHubUnavailableError(f"{HUB} is unreachable ({_summary(exc)})") from exc


def _call_with_timeout(call: Callable[[], T], timeout_s: float) -> T:
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)

    # The client retries a dead network for ~47 s; a daemon thread (unlike a ThreadPoolExecutor worker)
    # is abandoned on timeout without holding the interpreter open at exit.
    threading.Thread(target=run, name="qai-hub-connect", daemon=True).start()
    return future.result(timeout=timeout_s)


def _newest(devices: list[qai_hub.Device]) -> qai_hub.Device | None:
    return max(
        devices, key=lambda device: tuple(int(part) for part in re.findall(r"\d+", device.os)), default=None
    )


def _refusal(exc: qai_hub.UserError) -> str:
    text = _summary(exc)
    if "authenticat" in text.lower() or "token" in text.lower():
        return f"{HUB} rejected the API token ({str(exc).strip().splitlines()[0]}); {TOKEN_HELP}"
    return f"{HUB} refused the request ({text})"


def _summary(exc: BaseException) -> str:
    """An exception's message on one line, without the text boxes qai_hub draws around its messages."""
    text = " ".join(re.sub(r"[┌┐└┘─|]", " ", str(exc)).split())
    return text[:240] or type(exc).__name__


def _profile_target(
    session: _Session, device_name: str, device: qai_hub.Device | None, target: _Target
) -> dict:
    row = _row(device_name, target, session.settings, "ok")
    if device is None:
        row["status"] = f"failed: device {device_name!r} is not available on {HUB}"
        logger.warning("AI Hub has no device named %r", device_name)
        return row
    row |= {"device_os": device.os, "qai_hub_client_version": str(qai_hub.__version__)}
    task = _Task(session, device, target)
    try:
        model = _compile(task, row)
        row |= _profile(task, model, row)
        row["inference_psnr_db"] = _infer(task, model, row)
    except _StepFailed as exc:
        row["status"] = f"failed: {exc}"
    except HUB_ERRORS as exc:
        row["status"] = f"failed: {_summary(exc)}"
    if row["status"] != "ok":
        logger.warning("AI Hub profiling of %s %s", task.label, row["status"])
    return row


def _compile(task: _Task, row: dict) -> qai_hub.Model:
    settings = task.session.settings
    options = f"--target_runtime {settings['target_runtime']} {settings['compile_options']}".strip()
    job = _run_job(
        task,
        "compile",
        row,
        # For ONNX models AI Hub reads the input names and shapes from the file itself: no input_specs.
        lambda: task.session.client.submit_compile_job(
            model=task.target.model, device=task.device, name=_job_name(task), options=options
        ),
    )
    model = job.get_target_model()
    if model is None:
        raise _StepFailed(f"no compiled model (compile job {job.job_id})")
    row["compiled_model"] = _download_model(task, model)
    return model


def _profile(task: _Task, model: qai_hub.Model, row: dict) -> dict:
    # qai-hub 0.56 deprecates submit_profile_job: a profile job is an inference job with profile=True, here
    # on random inputs so the timing runs the full iteration count.
    job = _run_job(
        task,
        "profile",
        row,
        lambda: task.session.client.submit_inference_job(
            model=model,
            device=task.device,
            name=_job_name(task),
            options=task.session.settings["profile_options"],
            profile=True,
        ),
    )
    profile = job.download_profile()
    if not profile:
        raise _StepFailed(f"no profile (profile job {job.job_id})")
    _write_json(task.session.artifacts_dir / "profiles" / f"{task.stem}.json", profile)
    return {"hub_version": job.hub_version, **parse_profile(profile)}


def _infer(task: _Task, model: qai_hub.Model, row: dict) -> float:
    samples = int(task.session.settings["inference_samples"])
    arrays = task.session.sample_inputs[task.target.component]
    inputs = {
        name: [array[i : i + 1] for i in range(min(samples, len(array)))] for name, array in arrays.items()
    }
    job = _run_job(
        task,
        "inference",
        row,
        lambda: task.session.client.submit_inference_job(
            model=model, device=task.device, inputs=inputs, name=_job_name(task), profile=False
        ),
    )
    outputs = job.download_output_data()
    if not outputs:
        raise _StepFailed(f"no output data (inference job {job.job_id})")
    output = np.concatenate(next(iter(outputs.values())), axis=0)
    reference = task.session.reference_outputs[task.target.precision][task.target.component][:samples]
    if output.size != reference.size:
        raise _StepFailed(
            f"device output shape {output.shape} does not match ONNX Runtime's {reference.shape}"
            f" (inference job {job.job_id})"
        )
    return psnr_db(output.reshape(reference.shape), reference)


def _job_name(task: _Task) -> str:
    return f"mobilei2v_{task.target.component}_{task.target.precision}"


def _run_job(task: _Task, kind: str, row: dict, submit: Callable[[], Any]) -> Any:
    job = submit()
    row[f"{kind}_job_id"] = job.job_id
    logger.info("AI Hub %s job %s submitted: %s", kind, job.job_id, task.label)
    timeout_s = task.session.job_timeout_s
    try:
        status = job.wait(timeout=timeout_s)
    except TimeoutError:
        # A running job's logs can only be fetched by waiting for it to end.
        _fail(task, job, kind, "TIMEOUT", f"no result within {timeout_s} s", logs=[])
    if not status.success:
        logs = _download_logs(job, task.session.artifacts_dir / "failed_jobs" / f"{job.job_id}_logs")
        _fail(task, job, kind, status.code, status.message or status.code, logs)
    logger.info("AI Hub %s job %s finished: %s", kind, job.job_id, task.label)
    return job


def _download_logs(job: qai_hub.Job, folder: Path) -> list[Path]:
    try:
        return [Path(path) for path in job.download_job_logs(str(folder))]
    except HUB_ERRORS as exc:
        logger.warning("could not download the logs of AI Hub job %s: %s", job.job_id, _summary(exc))
        return []


def _fail(task: _Task, job: qai_hub.Job, kind: str, code: str, message: str, logs: list[Path]) -> NoReturn:
    root = task.session.artifacts_dir
    record = {
        "job_id": job.job_id,
        "kind": kind,
        "device": task.device.name,
        "device_os": task.device.os,
        "precision": task.target.precision,
        "component": task.target.component,
        "status": code,
        "message": message,
        "logs": [_relative(path, root) for path in logs],
    }
    _write_json(root / "failed_jobs" / f"{job.job_id}.json", record)
    raise _StepFailed(f"{message} ({kind} job {job.job_id})")


def _download_model(task: _Task, model: qai_hub.Model) -> str:
    folder = task.session.artifacts_dir / "compiled"
    staging = folder / f".partial-{task.stem}"  # renamed into place once whole: a kill leaves no half model
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # qai_hub appends the runtime's extension (.bin, .tflite, .onnx.zip) and returns the path it wrote.
    written = Path(model.download(str(staging / task.stem)))
    final = written.replace(folder / written.name)
    shutil.rmtree(staging)
    return _relative(final, task.session.artifacts_dir)


def _relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=2).encode())


def parse_profile(profile: dict) -> dict:
    """The figures of an AI Hub profile (`InferenceJob.download_profile()`): times in ms (AI Hub reports
    microseconds), the inference peak memory in MB (2**20 bytes, the upper bound of AI Hub's range) and the
    layer count per compute unit. Figures the profile lacks (older profile versions) are left out."""
    summary = profile["execution_summary"]
    units = Counter(layer.get("compute_unit") for layer in profile.get("execution_detail", []))
    peak_range = summary.get("inference_memory_peak_range")
    peak_bytes = peak_range[1] if peak_range else summary.get("estimated_inference_peak_memory")
    figures = {
        "estimated_inference_ms": _ms(summary.get("estimated_inference_time")),
        "peak_memory_mb": None if peak_bytes is None else peak_bytes / BYTES_PER_MB,
        "first_load_ms": _ms(summary.get("first_load_time")),
        "warm_load_ms": _ms(summary.get("warm_load_time")),
    }
    layers = {f"layers_{unit.lower()}": units[unit] for unit in COMPUTE_UNITS}
    return {key: value for key, value in figures.items() if value is not None} | layers


def _ms(microseconds: float | None) -> float | None:
    return None if microseconds is None else microseconds / US_PER_MS
