"""mobilei2v-pipeline: a reproducible Kedro/DVC/MLflow pipeline for the MobileI2V image-to-video model."""

from mobilei2v_pipeline.offline import go_offline

go_offline()

__version__ = "0.1.0"
