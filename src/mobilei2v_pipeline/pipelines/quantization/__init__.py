"""quantization: static post-training quantization of the exported denoiser to QDQ ONNX (W8A8, W8A16),
calibrated on its real inputs while the student samples val examples, scored against fp32."""

from mobilei2v_pipeline.pipelines.quantization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
