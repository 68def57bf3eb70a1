"""The export pipeline: the student denoiser (mobile attention), the VAE and light decoders and first-frame
encoders, as static-shape fp32 ONNX checked against torch in ONNX Runtime, and the configured ones as
ExecuTorch programs checked in ExecuTorch's runtime."""

from mobilei2v_pipeline.pipelines.export.pipeline import create_pipeline

__all__ = ["create_pipeline"]
