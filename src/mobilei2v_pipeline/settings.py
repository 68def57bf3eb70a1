"""Kedro project settings."""

import os
from pathlib import Path

from kedro.config import OmegaConfigLoader

from mobilei2v_pipeline.hooks import DvcExperimentRunHook, RunTrackingHook
from mobilei2v_pipeline.offline import go_offline

go_offline()
# The embedded default tracking store; MLFLOW_TRACKING_URI or conf/local/mlflow.yml point elsewhere.
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path(__file__).resolve().parents[2] / 'mlflow.db'}")


def local_artifact_location(path: str) -> str | None:
    """mlflow.yml's `${local_artifacts:mlartifacts}`: a folder for a local store; none for a tracking server
    (MLFLOW_TRACKING_URI http(s)), which then keeps the artifacts itself and serves them (mlflow-artifacts:/)
    instead of recording a folder on the disk of whoever created the experiment."""
    return None if os.environ["MLFLOW_TRACKING_URI"].startswith(("http://", "https://")) else path


HOOKS = (DvcExperimentRunHook(), RunTrackingHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # An env's parameter files state only what differs from base: nested keys merge instead of replacing.
    "merge_strategy": {"parameters": "soft"},
    "custom_resolvers": {"local_artifacts": local_artifact_location},
}
