"""Wiring of the quantization pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.quantization import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.sampling_examples,
                ["latent_table", "clip_latents", "latent_stats", "params:quantization.calibration"],
                "quantization_examples",
                name="sampling_examples",
            ),
            node(
                nodes.capture_denoiser_inputs,
                [
                    "student2_model",
                    "quantization_examples",
                    "params:quantization.calibration",
                    "params:teacher.sampling",
                ],
                "denoiser_inputs",
                name="capture_denoiser_inputs",
            ),
            node(
                nodes.quantize_models,
                ["onnx_models", "denoiser_inputs", "params:quantization"],
                "quantized_models",
                name="quantize_models",
            ),
            node(
                nodes.quantization_table,
                [
                    "onnx_models",
                    "quantized_models",
                    "denoiser_inputs",
                    "quantization_examples",
                    "params:quantization",
                    "params:teacher.sampling",
                ],
                ["quantization_table", "quantization_latency"],
                name="quantization_table",
            ),
            node(
                nodes.quantize_executorch,
                [
                    "student2_model",
                    "executorch_programs",
                    "onnx_models",
                    "denoiser_inputs",
                    "quantization_examples",
                    "params:quantization",
                    "params:teacher.sampling",
                ],
                [
                    "executorch_quantized_programs",
                    "executorch_quantization_table",
                    "executorch_quantization_latency",
                ],
                name="quantize_executorch",
            ),
            node(
                nodes.quantization_metrics,
                ["quantization_table", "executorch_quantization_table"],
                "quantization_metrics",
                name="quantization_metrics",
            ),
            node(
                nodes.measured_quantization_figures,
                ["quantization_latency", "executorch_quantization_latency"],
                "quantization_measured",
                name="measured_quantization_figures",
            ),
        ],
        tags="quantization",
    )
