"""Wiring of the evaluation pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.evaluation import nodes

MODELS = [
    "evaluation_examples",
    "vae",
    "light_autoencoder",
    "latent_stats",
    "clip_latents",
    "teacher_model",
    "student1_model",
    "student2_model",
    "params:teacher.sampling",
    "params:evaluation",
]
VIDEOS = ["evaluation_videos", "evaluation_examples", "params:teacher.sampling", "params:evaluation"]


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.held_out_examples,
                ["latent_table", "curated_clips@frames", "params:evaluation"],
                "evaluation_examples",
                name="held_out_examples",
            ),
            node(nodes.generate_videos, MODELS, "evaluation_videos", name="generate_evaluation_videos"),
            node(nodes.time_rows, MODELS, "evaluation_latency", name="time_rows"),
            node(nodes.evaluation_table, VIDEOS, "evaluation_table", name="evaluation_table"),
            node(
                nodes.evaluation_metrics, "evaluation_table", "evaluation_metrics", name="evaluation_metrics"
            ),
            node(
                nodes.measured_evaluation_figures,
                "evaluation_latency",
                "evaluation_measured",
                name="measured_evaluation_figures",
            ),
            node(
                nodes.plot_quality_and_latency,
                ["evaluation_table", "evaluation_latency"],
                "evaluation_chart",
                name="plot_quality_and_latency",
            ),
            node(nodes.side_by_side_grids, VIDEOS, "evaluation_grids", name="side_by_side_grids"),
            node(nodes.motion_gifs, VIDEOS, "evaluation_motion_gifs", name="motion_gifs"),
        ],
        tags="evaluation",
    )
