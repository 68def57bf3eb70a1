"""release: the exported graphs and the torch student logged to MLflow, and a registered model version
tagged with what it is and how it measured."""

from mobilei2v_pipeline.pipelines.release.pipeline import create_pipeline

__all__ = ["create_pipeline"]
