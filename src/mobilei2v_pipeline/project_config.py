"""The configuration a `kedro run --env ENV` of a project sees, for the commands that are not a Kedro run
(`mobilei2v retrain`, `mobilei2v ui`), and the tracking store its runs go to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

# settings.py also gives MLFLOW_TRACKING_URI its default, as it does for every `kedro run`.
from mobilei2v_pipeline.settings import CONFIG_LOADER_ARGS


def load_config(project: Path, env: str | None) -> dict[str, Any]:
    """The parameters, with the catalog under "catalog" and kedro-mlflow's settings under "mlflow"."""
    loader = OmegaConfigLoader(str(project / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return {**loader["parameters"], "catalog": loader["catalog"], "mlflow": loader["mlflow"]}


def tracking_uri(project: Path, config: dict[str, Any]) -> str:
    """Where the project's runs go: mlflow.yml's server.mlflow_tracking_uri, else MLFLOW_TRACKING_URI."""
    uri = config["mlflow"]["server"].get("mlflow_tracking_uri") or os.environ["MLFLOW_TRACKING_URI"]
    if "://" not in uri:  # kedro-mlflow reads a bare path relative to the project
        uri = (project / uri).resolve().as_uri()
    return uri
