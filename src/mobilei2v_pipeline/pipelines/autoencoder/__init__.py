"""autoencoder: the video VAE trained (or loaded) on the curated clips, and every clip's latents."""

from mobilei2v_pipeline.pipelines.autoencoder.pipeline import create_pipeline

__all__ = ["create_pipeline"]
