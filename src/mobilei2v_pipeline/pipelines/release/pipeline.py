"""Wiring of the release pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.release import nodes

REPORTS = ("export", "evaluation", "quantization", "profiling")  # the stages whose figures tag a release
KINDS = ("metrics", "measured")  # data/08_reporting/<stage>.json and data/08_reporting/measured/<stage>.json


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.register_release,
                {
                    "student2_model": "student2_model",
                    "onnx_models": "onnx_models",
                    "quantized_models": "quantized_models",
                    "executorch_programs": "executorch_programs",
                    "executorch_quantized_programs": "executorch_quantized_programs",
                    "coreml_models": "coreml_models",
                    "ai_hub_profile": "ai_hub_profile",
                    "release": "params:release",
                    "deployed": "params:profiling.deployed",
                    **{f"{stage}_{kind}": f"{stage}_{kind}" for stage in REPORTS for kind in KINDS},
                },
                ["challenger", "model_card"],
                name="register_release",
            ),
            node(
                nodes.gate_release,
                ["challenger", "params:release"],
                ["release_metrics", "release_measured", "release_gate"],
                name="gate_release",
            ),
        ],
        tags="release",
    )
