"""Wiring of the export pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.export import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.export_samples,
                ["latent_table", "clip_latents", "curated_clips@frames", "latent_stats", "params:export"],
                "export_samples",
                name="export_samples",
            ),
            node(
                nodes.export_to_onnx,
                [
                    "student2_model",
                    "vae",
                    "light_autoencoder",
                    "latent_stats",
                    "export_samples",
                    "params:export",
                ],
                ["onnx_models", "torch_outputs", "export_times"],
                name="export_to_onnx",
            ),
            node(
                nodes.check_onnx_models,
                ["onnx_models", "export_samples", "torch_outputs"],
                "export_table",
                name="check_onnx_models",
            ),
            node(
                nodes.mobile_attention_parity,
                "params:export.mobile_attention_parity",
                "mobile_attention_parity",
                name="mobile_attention_parity",
            ),
            node(
                nodes.export_to_executorch,
                [
                    "student2_model",
                    "vae",
                    "light_autoencoder",
                    "latent_stats",
                    "export_samples",
                    "torch_outputs",
                    "params:export.executorch",
                ],
                ["executorch_programs", "executorch_table", "executorch_times"],
                name="export_to_executorch",
            ),
            node(
                nodes.export_to_coreml,
                [
                    "student2_model",
                    "vae",
                    "light_autoencoder",
                    "latent_stats",
                    "export_samples",
                    "params:export.coreml",
                ],
                "coreml_models",
                name="export_to_coreml",
            ),
            node(nodes.check_coreml_models, "coreml_models", "coreml_table", name="check_coreml_models"),
            node(
                nodes.export_timings,
                ["export_times", "executorch_times"],
                ["export_timings", "export_measured"],
                name="export_timings",
            ),
            node(
                nodes.export_metrics,
                ["export_table", "mobile_attention_parity", "executorch_table", "coreml_table"],
                "export_metrics",
                name="export_metrics",
            ),
        ],
        tags="export",
    )
