"""`mobilei2v retrain`: the one command a scheduler calls.

It takes the project's retrain lock, pulls from the DVC remote, lets `dvc repro` rerun only the stages whose
inputs changed (the release stage at its end registers the new model, the challenger, and gates it against the
champion alias), pushes to the remote on promotion, and writes a report of what changed, what ran and what was
decided to data/08_reporting/retrain_report.md and to MLflow. The exit code tells a scheduler the outcome.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from dvc.exceptions import DvcException

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.offline import go_offline
from mobilei2v_pipeline.pipelines.release.gate import Decision
from mobilei2v_pipeline.project_config import load_config, tracking_uri

logger = logging.getLogger(__name__)

# Exit codes: a scheduler treats PROMOTED and KEPT as success, BUSY as "try later", anything else as failure.
PROMOTED, FAILED, KEPT, BUSY = 0, 1, 3, 75
LOCK_FILE = ".retrain.lock"
REPORTS = Path("data/08_reporting")


class RetrainBusyError(RuntimeError):
    """Another retrain holds the project's lock."""


@dataclass
class Retrain:
    """What one retrain saw and did; the report is made from it."""

    project: Path
    env: str
    config: dict[str, Any] = field(default_factory=dict)  # as `kedro run --env ENV` sees it; loaded once
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    remote: str | None = None
    changed: dict[str, Any] = field(default_factory=dict)
    stages_run: list[str] = field(default_factory=list)
    release: dict[str, float] = field(default_factory=dict)
    gate: pd.DataFrame | None = None
    outcome: str = "failed"  # promoted, kept, busy or failed
    nothing_changed: bool = False
    message: str = ""
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return {"promoted": PROMOTED, "kept": KEPT, "busy": BUSY}.get(self.outcome, FAILED)


@contextlib.contextmanager
def retrain_lock(path: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; wait up to `wait_s` for another holder, then refuse.

    flock is released by the kernel when its holder dies, so a killed retrain never leaves a stale lock.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = path.read_text().strip() or "unknown"
                    waited = f" after waiting {wait_s:g} s" if wait_s else ""
                    raise RetrainBusyError(
                        f"another retrain holds {path} ({holder}); not starting{waited}. "
                        "Pass --wait SECONDS to wait for it."
                    ) from None
                time.sleep(min(1.0, max(deadline - time.monotonic(), 0.01)))
        os.ftruncate(fd, 0)
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
        os.write(fd, holder.encode())
        yield
    finally:
        os.close(fd)  # releases the lock if held


def retrain(project: Path, env: str | None = None, wait_s: float = 0.0) -> Retrain:
    """Run one retrain of the project at `project` on Kedro env `env` (None: KEDRO_ENV or base)."""
    go_offline()
    env = env or os.environ.get("KEDRO_ENV") or "base"
    os.environ["KEDRO_ENV"] = env  # the stages' `kedro run` commands read it
    # The stages' `kedro` is this environment's, also under cron, whose PATH knows no venv.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    run = Retrain(project, env)
    clock = time.perf_counter()
    try:
        with retrain_lock(project / LOCK_FILE, wait_s):
            _retrain(run)
    except RetrainBusyError as exc:
        run.outcome, run.message = "busy", str(exc)
        return run  # the running retrain owns the reports
    except Exception as exc:  # the report and the exit code say what failed
        run.outcome, run.message = "failed", _explain(exc)
        if isinstance(exc, DvcException):  # a stage failed: its own output above says why
            logger.error("retrain failed: %s", run.message)
        else:
            logger.exception("retrain failed")
    run.seconds = time.perf_counter() - clock
    if not run.nothing_changed:
        write_report(run)
    return run


def _retrain(run: Retrain) -> None:
    from dvc.repo import Repo
    from mlflow.tracking import MlflowClient

    run.config = load_config(run.project, run.env)
    client = MlflowClient(tracking_uri(run.project, run.config))
    with Repo(str(run.project)) as repo:
        run.remote = repo.config["core"].get("remote")
        run.changed = repo.status()
        missing = missing_outputs(run.changed)
        if run.remote and missing:
            # Only what is missing (a fresh clone): pulling over outputs a killed retrain left behind
            # would need --force and throw away the checkpoints of an interrupted training.
            logger.info("pulling %d missing outputs from the DVC remote %r", len(missing), run.remote)
            repo.pull(targets=missing, allow_missing=True)
            run.changed = repo.status()
        if run.changed:
            logger.info("changed: %s", ", ".join(run.changed))
            stages = repo.reproduce()
        else:
            judged = _judged_version(run.project, client, run.config["release"])
            if judged:
                run.outcome, run.nothing_changed = "kept", True
                run.message = f"nothing changed: every stage is up to date; {judged}"
                logger.info(run.message)
                return
            # Up to date but never judged against this registry (a new tracking server, a killed gate).
            logger.info("nothing changed, but this registry never judged the release: releasing again")
            stages = repo.reproduce("release", force=True, single_item=True)
        run.stages_run = [stage.addressing for stage in stages]
        if "release" not in run.stages_run:
            run.outcome = "kept"
            run.message = f"stages run: {', '.join(run.stages_run)}; their outputs gave no new model"
            return
        run.release = _read_json(run.project / REPORTS / "release.json")
        run.gate = pd.read_csv(run.project / REPORTS / "release_gate.csv")
        if run.release["promoted"] and run.remote:
            logger.info("pushing to the DVC remote %r", run.remote)
            repo.push()
    run.outcome = "promoted" if run.release["promoted"] else "kept"
    decision = Decision(bool(run.release["passed_gate"]), run.gate, not run.release["champion_version"])
    name = run.config["release"]["model_name"]
    run.message = f"{name} version {int(run.release['challenger_version'])} {decision.reason}"
    logger.info(run.message)


def missing_outputs(status: dict[str, list]) -> list[str]:
    """The outputs `dvc status` reports deleted: what a pull can bring back."""
    return [
        path
        for changes in status.values()
        for change in changes
        if isinstance(change, dict)
        for path, state in change.get("changed outs", {}).items()
        if state == "deleted"
    ]


def _judged_version(project: Path, client, release: dict[str, Any]) -> str | None:
    """How the workspace's release was judged in this registry, or None if it was not."""
    from mlflow.exceptions import MlflowException

    from mobilei2v_pipeline.pipelines.release.nodes import champion_version

    numbers = _read_json(project / REPORTS / "release.json")
    if "challenger_version" not in numbers:
        return None
    name = release["model_name"]
    try:
        version = client.get_model_version(name, str(int(numbers["challenger_version"])))
    except MlflowException:
        return None
    decision = version.tags.get("decision")
    if not decision:
        return None
    champion = champion_version(client, name, release["champion_alias"])
    now = f"version {champion.version} is the champion" if champion else "there is no champion"
    return f"version {version.version} of {name} was already {decision}; {now}"


def write_report(run: Retrain) -> None:
    """data/08_reporting/retrain_report.md, and an MLflow run `retrain` with the report, the gate table and
    release.json, tagged like every run (commit, data version, env) and with the outcome."""
    report = format_report(run)
    path = run.project / REPORTS / "retrain_report.md"
    atomic_write_bytes(path, report.encode())
    if not run.config:  # loading it was what failed
        return
    try:
        _log_report(run, path)
    except Exception:  # the report on disk and the exit code still tell the scheduler
        logger.exception("could not log the retrain report to MLflow")


def format_report(run: Retrain) -> str:
    lines = [
        f"# Retrain {run.started:%Y-%m-%d %H:%M:%S} UTC: {run.outcome}",
        "",
        f"- env `{run.env}`, exit code {run.exit_code}, {run.seconds:.0f} s",
        f"- {run.message}" if run.message else "",
        f"- DVC remote: {run.remote or 'none configured'}",
        "",
        "## What changed (dvc status before the run)",
        "",
    ]
    lines += [f"- `{stage}`: {_describe_change(changes)}" for stage, changes in run.changed.items()]
    lines += ["- nothing"] if not run.changed else []
    lines += ["", "## Stages run", "", ", ".join(f"`{s}`" for s in run.stages_run) or "none", ""]
    if run.gate is not None:
        version = int(run.release.get("champion_version", 0))
        against = f"champion version {version}" if version else "no champion"
        lines += [
            f"## Decision: version {int(run.release['challenger_version'])} against {against}",
            "",
            _markdown_table(run.gate),
            "",
        ]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _markdown_table(table: pd.DataFrame) -> str:
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(False)]
    rows = [list(table.columns), ["---"] * len(table.columns), *cells]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _describe_change(changes: list) -> str:
    """dvc status's entries for a stage, e.g. "changed deps: data/01_raw/videos (modified)"."""
    parts = []
    for change in changes:
        if isinstance(change, dict):
            for kind, items in change.items():
                if isinstance(items, dict):
                    detail = ", ".join(f"{path} ({_flatten(state)})" for path, state in items.items())
                else:
                    detail = str(items)
                parts.append(f"{kind}: {detail}")
        else:
            parts.append(str(change))
    return "; ".join(parts)


def _flatten(state: Any) -> str:
    if isinstance(state, dict):  # params: {key: "modified"}
        return ", ".join(f"{key} {value}" for key, value in state.items())
    return str(state)


def _log_report(run: Retrain, report: Path) -> None:
    from mlflow.tracking import MlflowClient

    from mobilei2v_pipeline.datasets.video_folder import VideoFolderDataset
    from mobilei2v_pipeline.hooks import run_tags
    from mobilei2v_pipeline.storage import under

    config = run.config
    client = MlflowClient(tracking_uri(run.project, config))
    experiment = config["mlflow"]["tracking"]["experiment"]
    found = client.get_experiment_by_name(experiment["name"])
    if found is None:
        location = (experiment.get("create_experiment_kwargs") or {}).get("artifact_location")
        location = (run.project / location).resolve().as_uri() if location else None
        experiment_id = client.create_experiment(experiment["name"], artifact_location=location)
    else:
        experiment_id = found.experiment_id
    videos = VideoFolderDataset(str(under(run.project, config["catalog"]["user_videos"]["path"]))).load()
    tags = {
        **run_tags(run.project, run.env, "retrain", videos, config["synthetic"], config["seed"]),
        "outcome": run.outcome,
        "exit_code": str(run.exit_code),
        "stages_run": ",".join(run.stages_run) or "none",
        "decision": run.message[:5000],
    }
    created = client.create_run(experiment_id, run_name="retrain", tags=tags)
    run_id = created.info.run_id
    client.log_metric(run_id, "retrain_seconds", run.seconds)
    client.log_metric(run_id, "stages_run", len(run.stages_run))
    client.log_metric(run_id, "promoted", float(run.outcome == "promoted"))
    client.log_artifact(run_id, str(report), "retrain")
    for name in ("release.json", "release_gate.csv"):
        if run.stages_run and (run.project / REPORTS / name).exists():
            client.log_artifact(run_id, str(run.project / REPORTS / name), "retrain")
    client.set_terminated(run_id, "FINISHED" if run.outcome != "failed" else "FAILED")


def _explain(exc: BaseException) -> str:
    """The exception and its causes in one line, e.g. "failed to reproduce 'teacher': failed to run: ..."."""
    parts = []
    while exc is not None:
        parts.append(str(exc) or type(exc).__name__)
        exc = exc.__cause__
    return ": ".join(parts)


def _read_json(path: Path) -> dict[str, float]:
    return json.loads(path.read_text()) if path.exists() else {}
