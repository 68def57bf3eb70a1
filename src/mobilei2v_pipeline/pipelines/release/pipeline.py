"""Wiring of the release pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.release import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.register_release,
                [
                    "student2_model",
                    "onnx_models",
                    "quantized_models",
                    "evaluation_metrics",
                    "quantization_metrics",
                    "profiling_metrics",
                    "ai_hub_profile",
                    "params:release",
                    "params:profiling.deployed",
                ],
                "challenger",
                name="register_release",
            ),
            node(
                nodes.gate_release,
                ["challenger", "params:release"],
                ["release_metrics", "release_gate"],
                name="gate_release",
            ),
        ],
        tags="release",
    )
