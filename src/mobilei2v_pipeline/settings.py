"""Kedro project settings."""

import os
from pathlib import Path

from kedro.config import OmegaConfigLoader
from kedro.utils import find_kedro_project

from mobilei2v_pipeline.hooks import DvcExperimentRunHook, ParameterCheckHook, RunTrackingHook
from mobilei2v_pipeline.offline import go_offline


def default_tracking_uri(start: Path) -> str:
    """The embedded store of the Kedro project `start` lies in, found as Kedro finds it (the nearest folder
    up whose pyproject.toml has a [tool.kedro] section), not of the checkout the package was installed from:
    two checkouts sharing a venv keep their own runs, models and champion."""
    root = find_kedro_project(start) or start
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


go_offline()
# The default for `kedro run` and every `mobilei2v` command, which run in the project they work on;
# MLFLOW_TRACKING_URI or conf/local/mlflow.yml point elsewhere.
os.environ.setdefault("MLFLOW_TRACKING_URI", default_tracking_uri(Path.cwd()))


def local_artifact_location(path: str) -> str | None:
    """mlflow.yml's `${local_artifacts:mlartifacts}`: a folder for a local store; none for a tracking server
    (MLFLOW_TRACKING_URI http(s)), which then keeps the artifacts itself and serves them (mlflow-artifacts:/)
    instead of recording a folder on the disk of whoever created the experiment."""
    return None if os.environ["MLFLOW_TRACKING_URI"].startswith(("http://", "https://")) else path


HOOKS = (ParameterCheckHook(), DvcExperimentRunHook(), RunTrackingHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # An env's parameter files state only what differs from base: nested keys merge instead of replacing.
    "merge_strategy": {"parameters": "soft"},
    "custom_resolvers": {"local_artifacts": local_artifact_location},
}
