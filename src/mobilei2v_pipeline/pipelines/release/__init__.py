"""release: the exported graphs and the torch student logged to MLflow, a registered model version tagged
with what it is and how it measured (the challenger), and the gate that moves the champion alias to it only
if it is as good as the champion and fast enough."""

from mobilei2v_pipeline.pipelines.release.pipeline import create_pipeline

__all__ = ["create_pipeline"]
