"""Wiring of the autoencoder pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from mobilei2v_pipeline.pipelines.autoencoder import nodes
from mobilei2v_pipeline.training.curves import plot_training_curves


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.train_autoencoder,
                ["clip_table", "curated_clips@frames", "autoencoder_checkpoints", "params:autoencoder"],
                ["vae", "vae_training_history"],
                name="train_autoencoder",
            ),
            node(
                plot_training_curves,
                "vae_training_history",
                "autoencoder_training_curves",
                name="plot_autoencoder_training_curves",
            ),
            node(
                nodes.evaluate_autoencoder,
                [
                    "vae",
                    "light_autoencoder",
                    "clip_table",
                    "curated_clips@frames",
                    "clip_latents",
                    "vae_training_history",
                    "params:autoencoder",
                    "params:curation.motion_reference_short_side",
                ],
                ["autoencoder_metrics", "vae_reconstructions"],
                name="evaluate_autoencoder",
            ),
            node(
                nodes.train_light_autoencoder,
                [
                    "vae",
                    "clip_latents",
                    "latent_table",
                    "curated_clips@frames",
                    "latent_stats",
                    "light_autoencoder_checkpoints",
                    "params:autoencoder",
                ],
                ["light_autoencoder", "light_autoencoder_history", "light_autoencoder_metrics"],
                name="train_light_autoencoder",
            ),
            node(
                nodes.encode_latents,
                ["vae", "clip_table", "curated_clips@frames", "params:autoencoder"],
                ["clip_latents", "first_frame_latents", "latent_table", "latent_stats"],
                name="encode_latents",
            ),
        ],
        tags="autoencoder",
    )
