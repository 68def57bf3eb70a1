"""Project hooks: parameter checks, seeds, and the tags that make every MLflow run traceable to its code,
data and config."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from mobilei2v_pipeline.data_version import data_version
from mobilei2v_pipeline.git_state import git_state
from mobilei2v_pipeline.parameter_schemas import check_parameters, run_parameters
from mobilei2v_pipeline.storage import VideoLocation

logger = logging.getLogger(__name__)
DVC_EXP_NAME = "DVC_EXP_NAME"  # set by `dvc exp run` for the stages it runs


def export_ai_hub_token(credentials: dict[str, Any]) -> None:
    """Hand conf/local/credentials.yml's qai_hub.api_token to the profiling stage through the environment
    (as QAI_HUB_API_TOKEN, unless that is set already), so it never becomes a parameter, a tag or a log."""
    token = ((credentials or {}).get("qai_hub") or {}).get("api_token")
    if token and not os.environ.get("QAI_HUB_API_TOKEN"):
        os.environ["QAI_HUB_API_TOKEN"] = str(token)


def run_tags(
    project_path: Path,
    env: str | None,
    pipeline: str,
    user_videos: dict[str, VideoLocation],
    synthetic: dict[str, Any],
    seed: int,
) -> dict[str, str]:
    """The tags every MLflow run of the project carries: commit, env, what ran, data version, seed."""
    return {
        **git_state(project_path),
        "kedro_env": env or "base",
        "pipeline": pipeline,
        "data_version": data_version(user_videos, synthetic, project_path / ".cache" / "video_hashes.json"),
        "seed": str(seed),
    }


class ParameterCheckHook:
    """Checks every parameter (`--params` included) against its schema as soon as the context exists:
    before the catalog is built, the MLflow run starts or any node runs, so a bad value costs seconds."""

    @hook_impl(tryfirst=True)  # before kedro-mlflow's hook sets up tracking
    def after_context_created(self, context) -> None:
        check_parameters(run_parameters(context.config_loader))


class RunTrackingHook:
    """Seeds the random generators, then tags kedro-mlflow's run with the commit, data version and env."""

    @hook_impl
    def after_context_created(self, context) -> None:
        self._project_path = Path(context.project_path)
        self._env = context.env
        # Secrets live in conf/local whatever the run's env (`--env smoke` reads base + smoke only). Read with
        # OmegaConf itself (for `${oc.env:...}`), not another Kedro config loader: that would re-register the
        # process-wide `globals` resolver with conf/local's globals, and the run's catalog would resolve
        # `${globals:data}` with them instead of its env's.
        credentials = self._project_path / "conf" / "local" / "credentials.yml"
        if credentials.is_file():
            export_ai_hub_token(OmegaConf.to_container(OmegaConf.load(credentials), resolve=True))

    @hook_impl(trylast=True)  # after kedro-mlflow's hook has started the run
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: DataCatalog) -> None:
        seed = int(catalog.load("params:seed"))
        random.seed(seed)
        np.random.seed(seed)
        tags = run_tags(
            self._project_path,
            self._env,
            ",".join(run_params.get("pipeline_names") or ["__default__"]),
            catalog.load("user_videos"),
            catalog.load("params:synthetic"),
            seed,
        )
        if os.environ.get(DVC_EXP_NAME):  # kedro-mlflow names the run after each stage's pipeline
            tags |= {"dvc_experiment": os.environ[DVC_EXP_NAME], "mlflow.runName": os.environ[DVC_EXP_NAME]}
        logger.info("Run tags: %s", tags)
        if mlflow.active_run() is not None:
            mlflow.set_tags(tags)
            mlflow.log_dict(catalog.load("parameters"), "config/parameters.json")


class DvcExperimentRunHook:
    """`dvc exp run` runs each stage as its own `kedro run`, and names the experiment in DVC_EXP_NAME: the
    stages of one experiment log into one MLflow run, named and tagged `dvc_experiment` after it."""

    @hook_impl
    def after_context_created(self, context) -> None:
        self._context = context

    @hook_impl(tryfirst=True)  # before kedro-mlflow's hook starts its run, which then resumes this one
    def before_pipeline_run(self) -> None:
        name = os.environ.get(DVC_EXP_NAME)
        config = getattr(self._context, "mlflow", None)  # kedro-mlflow's settings, once it has read them
        if not name or config is None or mlflow.active_run() is not None:
            return
        client = MlflowClient()
        experiment_id = client.get_experiment_by_name(config.tracking.experiment.name).experiment_id
        found = client.search_runs([experiment_id], f"tags.dvc_experiment = '{name}'", max_results=1)
        run = (
            found[0]
            if found
            else client.create_run(experiment_id, tags={"dvc_experiment": name}, run_name=name)
        )
        os.environ["MLFLOW_RUN_ID"] = run.info.run_id  # mlflow.start_run resumes it
