"""Kedro project settings."""

import os
from pathlib import Path

from kedro.config import OmegaConfigLoader

from mobilei2v_pipeline.hooks import RunTrackingHook
from mobilei2v_pipeline.offline import go_offline

go_offline()
# The embedded default tracking store; MLFLOW_TRACKING_URI or conf/local/mlflow.yml point elsewhere.
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path(__file__).resolve().parents[2] / 'mlflow.db'}")

HOOKS = (RunTrackingHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # An env's parameter files state only what differs from base: nested keys merge instead of replacing.
    "merge_strategy": {"parameters": "soft"},
}
