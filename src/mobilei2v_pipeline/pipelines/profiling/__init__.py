"""The profiling pipeline: ONNX Runtime on this machine, Qualcomm AI Hub on Snapdragon devices."""

from mobilei2v_pipeline.pipelines.profiling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
