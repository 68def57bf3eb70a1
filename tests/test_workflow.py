"""The scheduled-retrain workflow, checked offline: its structure, not a run on GitHub."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "retrain.yml"
SECRETS = {
    "DVC_REMOTE_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "QAI_HUB_API_TOKEN",
}
SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# Cron fields: (lowest, highest, names allowed in place of numbers).
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
CRON_FIELDS = [(0, 59, []), (0, 23, []), (1, 31, []), (1, 12, MONTHS), (0, 6, DAYS)]
CRON_ITEM = re.compile(r"^(?:\*|(?P<lo>\w+)(?:-(?P<hi>\w+))?)(?:/(?P<step>\d+))?$")


def cron_field_ok(field: str, lowest: int, highest: int, names: list[str]) -> bool:
    """One cron field: a comma list of `*`, `n` or `n-m`, each with an optional `/step`."""

    def value(token: str) -> int | None:
        if token.isdigit():
            number = int(token)
            return number if lowest <= number <= highest else None
        if token.lower() in names:
            return names.index(token.lower()) + lowest
        return None

    for item in field.split(","):
        match = CRON_ITEM.match(item)
        if match is None:
            return False
        lo, hi, step = match["lo"], match["hi"], match["step"]
        if step is not None and int(step) == 0:
            return False
        if lo is None:
            continue
        start, end = value(lo), value(hi) if hi is not None else value(lo)
        if start is None or end is None or start > end:
            return False
    return True


def cron_ok(expression: str) -> bool:
    fields = expression.split()
    return len(fields) == 5 and all(
        cron_field_ok(field, *limits) for field, limits in zip(fields, CRON_FIELDS, strict=True)
    )


def test_cron_checker() -> None:
    assert cron_ok("0 3 * * 1")
    assert cron_ok("*/15 0-6,22 1 jan-mar MON")
    assert not cron_ok("0 3 * *")
    assert not cron_ok("60 3 * * 1")
    assert not cron_ok("0 24 * * 1")
    assert not cron_ok("0 3 0 * 1")
    assert not cron_ok("0 3 * * 1-0")
    assert not cron_ok("0 3 * * x")
    assert not cron_ok("*/0 3 * * 1")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def step_running(steps: list[dict[str, Any]], text: str) -> dict[str, Any]:
    found = [step for step in steps if text in step.get("run", "")]
    assert len(found) == 1, f"expected one step running {text!r}, found {len(found)}"
    return found[0]


def strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every string in the workflow (keys included), with the path of keys leading to it."""
    if isinstance(node, dict):
        for key, child in node.items():
            if isinstance(key, str):
                yield (*path, key), key
            yield from strings(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from strings(child, (*path, index))
    elif isinstance(node, str):
        yield path, node


def test_triggers(workflow: dict[str, Any]) -> None:
    triggers = workflow["on"]
    crons = [entry["cron"] for entry in triggers["schedule"]]
    assert crons
    for cron in crons:
        assert isinstance(cron, str)
        assert cron_ok(cron), cron
    assert "workflow_dispatch" in triggers
    kedro_env = triggers["workflow_dispatch"]["inputs"]["kedro_env"]
    assert kedro_env["default"] == "base"
    assert not kedro_env.get("required", False)


def test_no_overlap_and_limits(workflow: dict[str, Any]) -> None:
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["concurrency"]["group"]
    assert workflow["permissions"] == {"contents": "write"}
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert isinstance(job["timeout-minutes"], int) and job["timeout-minutes"] > 0


def test_telemetry_off(workflow: dict[str, Any]) -> None:
    env = {key: str(value) for key, value in workflow["env"].items()}
    assert env["KEDRO_DISABLE_TELEMETRY"] == "true"
    assert env["DO_NOT_TRACK"] == "1"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["DVC_NO_ANALYTICS"] == "1"
    assert env["GX_ANALYTICS_ENABLED"] == "False"


def test_one_job_runs_retrain(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert len(jobs) == 1
    (job,) = jobs.values()
    runs = [step.get("run", "") for step in job["steps"]]
    assert sum("mobilei2v retrain" in run for run in runs) == 1


def test_setup(steps: list[dict[str, Any]]) -> None:
    uses = {step.get("uses", "").split("@")[0]: step for step in steps}
    assert uses["actions/checkout"]["with"]["fetch-depth"] == 0
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    step_running(steps, "make setup")


def test_secrets_only_in_env(workflow: dict[str, Any]) -> None:
    referenced = set()
    for path, text in strings(workflow):
        if "secrets." not in text:
            continue
        assert len(path) >= 2 and path[-2] == "env", f"secret outside an env mapping at {path}: {text!r}"
        names = SECRET_REF.findall(text)
        assert names, f"unexpected secrets text at {path}: {text!r}"
        referenced.update(names)
    assert referenced >= SECRETS, f"secrets never referenced: {sorted(SECRETS - referenced)}"


def test_dvc_remote(steps: list[dict[str, Any]]) -> None:
    step = step_running(steps, "dvc remote add")
    run = step["run"]
    assert re.search(r'"dvc-s3==\d+\.\d+\.\d+"', run), "dvc-s3 must be pinned to an exact version"
    assert '--local --default --force ci "$DVC_REMOTE_URL"' in run
    assert "DVC_REMOTE_URL" in step["env"]


def test_retrain_outcomes(steps: list[dict[str, Any]]) -> None:
    step = step_running(steps, "mobilei2v retrain")
    run = step["run"]
    assert '--env "$KEDRO_ENV"' in run
    assert "KEDRO_ENV" in step["env"]
    assert "set +e" in run, "the exit code must be read, not fail the step at once"
    for code in (0, 3, 75):
        assert re.search(rf"(?<![\w.]){code}\)|(?:-eq|==?)\s*\"?{code}\b", run), f"exit code {code}"
    for outcome in ("promoted", "kept", "busy", "failed"):
        assert outcome in run
    assert "GITHUB_OUTPUT" in run
    assert "::warning::" in run
    assert step.get("id")


def test_only_failed_fails_the_job(steps: list[dict[str, Any]]) -> None:
    retrain_id = step_running(steps, "mobilei2v retrain")["id"]
    failing = [step for step in steps if re.search(r"\bexit 1\b", step.get("run", ""))]
    assert len(failing) == 1
    assert failing[0]["if"].replace('"', "'") == f"steps.{retrain_id}.outputs.outcome == 'failed'"


def test_commit_on_promotion(steps: list[dict[str, Any]]) -> None:
    retrain_id = step_running(steps, "mobilei2v retrain")["id"]
    step = step_running(steps, "git commit")
    condition = step["if"].replace('"', "'")
    assert f"steps.{retrain_id}.outputs.outcome == 'promoted'" in condition
    assert "git add dvc.lock" in step["run"]
    assert "git push" in step["run"]
    assert "github-actions[bot]" in step["run"]


def test_reports_always(steps: list[dict[str, Any]]) -> None:
    (upload,) = [step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@v4")]
    assert upload["if"] == "always()"
    assert upload["with"]["if-no-files-found"] == "ignore"
    for name in ("release.json", "release_gate.csv", "retrain_report.md"):
        assert f"data/08_reporting/{name}" in upload["with"]["path"]
    summary = step_running(steps, "GITHUB_STEP_SUMMARY")
    assert summary["if"] == "always()"
    assert "retrain_report.md" in summary["run"]


def test_readme_cron_line() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    found = [
        line
        for line in lines
        if "mobilei2v retrain" in line
        and len(fields := line.strip().strip("`").split()) > 5
        and cron_ok(" ".join(fields[:5]))
        and "mobilei2v retrain" in " ".join(fields[5:])
    ]
    assert found, (
        "README.md has no cron line for the scheduled retrain: expected a line like "
        "'0 3 * * 1 cd /path/to/repo && .venv/bin/mobilei2v retrain' (5 cron fields, then the command)"
    )
