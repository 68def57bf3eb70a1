"""evaluation: the teacher at 1, 2, 4 and N steps beside both students, on one fixed held-out set, for
quality against the teacher at N and latency on this machine, measured in one run."""

from mobilei2v_pipeline.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
