"""Wiring of the evaluation pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.evaluation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.held_out_examples,
                ["latent_table", "curated_clip_frames", "params:evaluation"],
                "evaluation_examples",
                name="held_out_examples",
            ),
            node(
                nodes.generate_videos,
                [
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
                ],
                "evaluation_videos",
                name="generate_evaluation_videos",
            ),
            node(
                nodes.evaluation_table,
                ["evaluation_videos", "evaluation_examples", "params:evaluation"],
                "evaluation_table",
                name="evaluation_table",
            ),
            node(nodes.latency_table, "evaluation_videos", "evaluation_latency", name="latency_table"),
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
            node(
                nodes.side_by_side_grids,
                ["evaluation_videos", "evaluation_examples", "params:evaluation"],
                "evaluation_grids",
                name="side_by_side_grids",
            ),
            node(
                nodes.motion_gifs,
                ["evaluation_videos", "evaluation_examples", "params:evaluation"],
                "evaluation_motion_gifs",
                name="motion_gifs",
            ),
        ],
        tags="evaluation",
    )
