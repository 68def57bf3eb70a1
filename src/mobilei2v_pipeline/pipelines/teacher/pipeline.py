"""Wiring of the teacher pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.teacher import nodes
from mobilei2v_pipeline.training.curves import plot_training_curves


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.train_teacher,
                [
                    "clip_latents",
                    "latent_table",
                    "latent_stats",
                    "vae",
                    "teacher_checkpoints",
                    "params:teacher",
                ],
                ["teacher_model", "teacher_training_history"],
                name="train_teacher",
            ),
            node(
                plot_training_curves,
                "teacher_training_history",
                "teacher_training_curves",
                name="plot_teacher_training_curves",
            ),
            node(
                nodes.summarize_teacher,
                ["teacher_model", "teacher_training_history", "params:teacher"],
                "teacher_metrics",
                name="summarize_teacher",
            ),
            node(
                nodes.render_teacher_samples,
                ["teacher_model", "vae", "clip_latents", "latent_table", "latent_stats", "params:teacher"],
                "teacher_samples",
                name="render_teacher_samples",
            ),
        ],
        tags="teacher",
    )
