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
                "release_metrics",
                name="register_release",
            ),
        ],
        tags="release",
    )
