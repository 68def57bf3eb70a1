"""Wiring of the profiling pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.profiling import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.profile_onnxruntime,
                ["onnx_models", "quantized_models", "export_samples", "params:profiling.onnxruntime"],
                ["onnxruntime_profile", "onnxruntime_operators", "onnxruntime_outputs"],
                name="profile_onnxruntime",
            ),
            node(
                nodes.profile_ai_hub,
                [
                    "onnx_models",
                    "quantized_models",
                    "export_samples",
                    "onnxruntime_outputs",
                    "ai_hub_artifacts",
                    "params:profiling.qai_hub",
                ],
                "ai_hub_profile",
                name="profile_ai_hub",
            ),
            node(nodes.profiling_metrics, "ai_hub_profile", "profiling_metrics", name="profiling_metrics"),
            node(
                nodes.measured_profiling_figures,
                ["onnxruntime_profile", "ai_hub_profile", "onnxruntime_outputs", "params:profiling"],
                "profiling_measured",
                name="measured_profiling_figures",
            ),
            node(
                nodes.plot_latency,
                ["onnxruntime_profile", "ai_hub_profile"],
                "latency_chart",
                name="plot_latency",
            ),
        ],
        tags="profiling",
    )
