"""The export pipeline: the student denoiser (mobile attention), the VAE and light decoders and first-frame
encoders, as static-shape fp32 ONNX, checked against torch in ONNX Runtime."""

from mobilei2v_pipeline.pipelines.export.pipeline import create_pipeline

__all__ = ["create_pipeline"]
