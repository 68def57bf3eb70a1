"""mobilei2v-pipeline: a reproducible Kedro/DVC/MLflow pipeline for the MobileI2V image-to-video model."""

from mobilei2v_pipeline.offline import go_offline
from mobilei2v_pipeline.omp_policy import sleep_while_waiting

go_offline()
sleep_while_waiting()

__version__ = "0.1.0"
