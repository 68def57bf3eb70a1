"""`mobilei2v train STAGE`: one stage's training node outside `kedro run`, for `accelerate launch` across
machines. Every rank loads the node's inputs from the catalog and trains its share; rank 0 alone tracks the
run in MLflow and saves the outputs, so nothing is written twice and Kedro never runs once per rank."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click
import mlflow
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from mobilei2v_pipeline.hooks import run_tags


def run_training_node(pipeline: str, name: str, env: str | None, root: Path) -> list[str]:
    """Run the node `name` of `pipeline`; returns the outputs saved (on rank 0)."""
    bootstrap_project(root)
    node = next((n for n in pipelines[pipeline].nodes if n.name == name), None)
    if node is None:
        raise click.ClickException(f"pipeline {pipeline!r} has no node {name}")
    with KedroSession.create(project_path=root, env=env) as session:
        catalog = session.load_context().catalog
        inputs = {name: catalog.load(name) for name in node.inputs}
        main = int(os.environ.get("RANK", "0")) == 0
        with mlflow.start_run(run_name=name) if main else contextlib.nullcontext():
            if main:
                user_videos, synthetic = catalog.load("user_videos"), catalog.load("params:synthetic")
                seed = int(catalog.load("params:seed"))
                mlflow.set_tags(run_tags(root, env, pipeline, user_videos, synthetic, seed))
            outputs = node.run(inputs)
            if main:
                for name, data in outputs.items():
                    catalog.save(name, data)
    return sorted(outputs) if main else []
