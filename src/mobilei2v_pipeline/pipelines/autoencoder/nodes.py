"""Nodes of the autoencoder pipeline: train (or load) the video VAE, measure it, encode every clip once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.light_autoencoder import LightAutoencoderConfig, light_autoencoder_file
from mobilei2v_pipeline.pipelines.autoencoder.light import LightAutoencoderTask, vae_targets
from mobilei2v_pipeline.pipelines.autoencoder.task import AutoencoderTask, reconstruct, reconstruction_psnr
from mobilei2v_pipeline.training.loop import config_from_params, train

logger = logging.getLogger(__name__)


def stack_clips(clip_frames: dict[str, Callable[[], np.ndarray]], clip_ids: pd.Series) -> np.ndarray:
    """The clips' frames (N, T, H, W, 3) uint8, in the order of `clip_ids`."""
    return np.stack([np.asarray(clip_frames[clip_id]()) for clip_id in clip_ids])


def train_autoencoder(
    clip_table: pd.DataFrame, clip_frames: dict[str, Callable[[], np.ndarray]], autoencoder: dict[str, Any]
) -> tuple[Any, pd.DataFrame]:
    """Train the VAE from scratch on the train clips, or load it from `pretrained_path` and skip training.

    Returns the VAE and its training history (one row per logged step).
    """
    if autoencoder["pretrained_path"]:
        logger.info("Loading the VAE from %s; training skipped", autoencoder["pretrained_path"])
        return ae.load_pretrained_vae(autoencoder["pretrained_path"]), pd.DataFrame({"step": []})
    train_ids = clip_table.loc[clip_table["split"] == "train", "clip_id"]
    val_ids = clip_table.loc[clip_table["split"] == "val", "clip_id"]
    task = AutoencoderTask(
        autoencoder["vae"],
        stack_clips(clip_frames, train_ids),
        stack_clips(clip_frames, val_ids),
        autoencoder["kl_weight"],
        autoencoder["crop_size"],
    )
    result = train(task, config_from_params(autoencoder["training"]), autoencoder["checkpoint_dir"])
    vae = ae.build_vae(autoencoder["vae"])
    vae.load_state_dict(result.state_dict)
    return vae.eval(), pd.DataFrame(result.history)


def evaluate_autoencoder(
    vae: Any,
    clip_table: pd.DataFrame,
    clip_frames: dict[str, Callable[[], np.ndarray]],
    history: pd.DataFrame,
    autoencoder: dict[str, Any],
) -> tuple[dict[str, float], np.ndarray]:
    """Reconstruction PSNR on each split, and a video of val clips beside their reconstructions."""
    metrics: dict[str, float] = {}
    for split in ("train", "val"):
        clips = stack_clips(clip_frames, clip_table.loc[clip_table["split"] == split, "clip_id"])
        metrics[f"vae_{split}_psnr_db"] = reconstruction_psnr(vae, clips)
    temporal, spatial = ae.compression(vae)
    metrics |= {
        "vae_params": sum(p.numel() for p in vae.parameters()),
        "vae_pretrained": int(bool(autoencoder["pretrained_path"])),
        "vae_train_steps": int(history["step"].max()) if len(history) else 0,
        "vae_temporal_compression": temporal,
        "vae_spatial_compression": spatial,
    }
    logger.info(
        "VAE reconstruction PSNR: val %.2f dB, train %.2f dB",
        metrics["vae_val_psnr_db"],
        metrics["vae_train_psnr_db"],
    )
    val = stack_clips(clip_frames, clip_table.loc[clip_table["split"] == "val", "clip_id"].head(4))
    pairs = np.concatenate(
        [val, reconstruct(vae, val)], axis=3
    )  # (N, T, H, 2W, 3): original | reconstruction
    return metrics, np.concatenate(list(pairs), axis=1)  # clips stacked vertically


@torch.no_grad()
def encode_latents(
    vae: Any,
    clip_table: pd.DataFrame,
    clip_frames: dict[str, Callable[[], np.ndarray]],
    autoencoder: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict[str, list[float]]]:
    """Encode every clip once: latents (N, C, t, h, w), the first frame encoded on its own (N, C, 1, h, w),
    a table of which clip each row is, and per-channel statistics of the train latents for normalising."""
    vae.eval()
    latents, first_frames = [], []
    batch = autoencoder["encode_batch_size"]
    ids = clip_table["clip_id"]
    for start in range(0, len(ids), batch):
        video = ae.to_model_range(stack_clips(clip_frames, ids.iloc[start : start + batch]))
        latents.append(ae.encode(vae, video))
        first_frames.append(ae.encode_first_frame(vae, video))
    latents_all = torch.cat(latents)
    table = clip_table[["clip_id", "video_id", "split", "motion_score", "frames", "height", "width"]]
    table = table.reset_index(drop=True)
    stats = ae.latent_stats(latents_all[torch.as_tensor((table["split"] == "train").to_numpy())])
    return latents_all.numpy(), torch.cat(first_frames).numpy(), table, stats


def train_light_autoencoder(
    vae: Any,
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    clip_frames: dict[str, Callable[[], np.ndarray]],
    latent_stats: dict[str, list[float]],
    autoencoder: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, float]]:
    """Distil the light encoder and decoder from the VAE; returns the model, its history and its figures."""
    light = autoencoder["light"]
    temporal, spatial = ae.compression(vae)
    config = LightAutoencoderConfig(clip_latents.shape[1], spatial, temporal, tuple(light["widths"]))
    height, width = int(latent_table["height"].iloc[0]), int(latent_table["width"].iloc[0])
    split = {}
    for name in ("train", "val"):
        rows = (latent_table["split"] == name).to_numpy()
        first = stack_clips(clip_frames, latent_table.loc[rows, "clip_id"])[:, 0]
        split[name] = {
            "latents": torch.as_tensor(clip_latents[rows]),
            "videos": vae_targets(vae.eval(), clip_latents[rows], height, width),
            "images": ae.to_model_range(first[:, None])[:, :, 0],
        }
    task = LightAutoencoderTask(config, split, latent_stats)
    result = train(task, config_from_params(light["training"]), light["checkpoint_dir"])
    model = task.build_model()
    model.load_state_dict(result.state_dict)
    figures = {f"light_{k}": v for k, v in task.validate(model).items()}
    figures["light_params"] = sum(p.numel() for p in model.parameters())
    return light_autoencoder_file(model.eval()), pd.DataFrame(result.history), figures
