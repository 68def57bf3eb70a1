"""`mobilei2v paper-check`'s runner: the DVC stages' own commands with the paper_check env, each timed with
the peak memory of its process tree, a report after every stage, a stop at the first failure. (The check
itself takes about an hour, so it is not run here; its config is checked in test_parameter_schemas.py.)"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from mobilei2v_pipeline import paper_check
from mobilei2v_pipeline.process_memory import run_sampled


def test_every_dvc_stage_runs_in_order_with_the_paper_check_env():
    commands = paper_check.stage_commands(REPO)
    assert list(commands) == list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    assert len(commands) == 11 and all(
        c[0] == "kedro" and c[-2:] == ["--env", "paper_check"] for c in commands.values()
    )


def test_the_peak_memory_of_the_whole_process_tree_is_sampled(tmp_path: Path):
    # The child starts a grandchild that holds 400 MB: the tree's peak counts it.
    grandchild = "import time; b = bytearray(400 * 2**20); time.sleep(1.5)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}]); sys.exit(3)"
    with (tmp_path / "log").open("w") as log:
        code, wall, peak = run_sampled([sys.executable, "-c", child], tmp_path, {}, log)
    assert code == 3 and wall >= 1.5 and peak >= 400


def _project_with_stages(root: Path, stages: dict[str, str]) -> Path:
    """A project whose dvc.yaml's stages run small Python commands (the runner calls them from this venv)."""
    root.mkdir()
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {n: {"cmd": c} for n, c in stages.items()}}))
    return root


def test_a_failed_stage_stops_the_check_and_the_report_says_which(tmp_path: Path):
    ok, fails = "python -c print('ok')", "python -c import(sys)"
    project = _project_with_stages(tmp_path / "project", {"first": ok, "second": fails, "third": ok})
    runs = paper_check.run_paper_check(project)
    assert [(r.stage, r.exit_code != 0) for r in runs] == [("first", False), ("second", True)]
    reports = project / "data/paper_check/08_reporting"
    report = json.loads((reports / "paper_check.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["first", "second"]
    assert report["memory_limit_mb"] == 20 * 1024 and report["total"]["peak_rss_mb"] > 0
    assert "| second | failed (1) |" in (reports / "paper_check.md").read_text()
    assert "SyntaxError" in (reports / "logs/second.log").read_text()

    # Rerun from the failed stage after a fix: the report keeps the first stage's run and replaces the rest.
    (project / "dvc.yaml").write_text((project / "dvc.yaml").read_text().replace("import(sys)", "pass"))
    assert [r.stage for r in paper_check.run_paper_check(project, from_stage="second")] == ["second", "third"]
    report = json.loads((reports / "paper_check.json").read_text())
    assert [(s["stage"], s["exit_code"]) for s in report["stages"]] == [
        ("first", 0),
        ("second", 0),
        ("third", 0),
    ]
    assert [r.stage for r in paper_check.run_paper_check(project, ["first"])] == ["first"]
    assert len(json.loads((reports / "paper_check.json").read_text())["stages"]) == 3
    with pytest.raises(ValueError, match=r"unknown stages \['fourth'\]; the stages are"):
        paper_check.run_paper_check(project, ["fourth"])


def test_the_real_vae_is_used_when_there_and_a_random_one_is_said_to_be(
    project: Path, caplog: pytest.LogCaptureFixture
):
    random_vae = project / paper_check.env_parameters(project)["autoencoder"]["pretrained_path"]
    random_vae.mkdir(parents=True)
    (random_vae / "config.json").write_text("{}")  # written before: not written again
    with caplog.at_level(logging.WARNING):
        assert paper_check.vae_parameters(project) == []
    assert "RANDOMLY INITIALISED" in caplog.text and "RANDOM" in random_vae.name.upper()

    (project / paper_check.REAL_VAE).mkdir(parents=True)
    (project / paper_check.REAL_VAE / "config.json").write_text("{}")
    assert paper_check.vae_parameters(project) == [
        "--params",
        f"autoencoder.pretrained_path={paper_check.REAL_VAE}",
    ]
