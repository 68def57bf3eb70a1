"""teacher: the many-step flow-matching MobileI2V teacher, trained on the cached latents."""

from mobilei2v_pipeline.pipelines.teacher.pipeline import create_pipeline

__all__ = ["create_pipeline"]
