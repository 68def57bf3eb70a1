"""data_curation: raw videos -> scored, filtered, split and validated training clips."""

from mobilei2v_pipeline.pipelines.data_curation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
