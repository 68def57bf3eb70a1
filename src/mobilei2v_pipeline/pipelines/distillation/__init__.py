"""Two-stage timestep distillation of the teacher: 2 steps by trajectory regression, then 1 step by
distribution matching with an adversarial loss and the regression anchor."""

from mobilei2v_pipeline.pipelines.distillation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
