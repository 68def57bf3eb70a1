"""Nodes of the autoencoder pipeline: train (or load) the video VAE, measure it, encode every clip once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.light_autoencoder import (
    LightAutoencoderConfig,
    light_autoencoder_file,
    load_light_autoencoder,
)
from mobilei2v_pipeline.pipelines.autoencoder.light import LightAutoencoderTask, vae_targets
from mobilei2v_pipeline.pipelines.autoencoder.task import AutoencoderTask
from mobilei2v_pipeline.psnr import UINT8_PEAK, psnr_db
from mobilei2v_pipeline.training.loop import config_from_params, train
from mobilei2v_pipeline.video.clip_scores import motion_score
from mobilei2v_pipeline.video.metrics import rank_correlation

logger = logging.getLogger(__name__)


def stack_clips(clip_frames: dict[str, Callable[[], np.ndarray]], clip_ids: pd.Series) -> np.ndarray:
    """The clips' frames (N, T, H, W, 3) uint8, in the order of `clip_ids`."""
    return np.stack([np.asarray(clip_frames[clip_id]()) for clip_id in clip_ids])


def train_autoencoder(
    clip_table: pd.DataFrame,
    clip_frames: dict[str, Callable[[], np.ndarray]],
    checkpoints: Path,
    autoencoder: dict[str, Any],
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
        autoencoder["temporal_loss_weight"],
    )
    result = train(task, config_from_params(autoencoder["training"]), checkpoints)
    vae = ae.build_vae(autoencoder["vae"])
    vae.load_state_dict(result.state_dict)
    return vae.eval(), pd.DataFrame(result.history)


def evaluate_autoencoder(
    vae: Any,
    light_autoencoder: dict[str, Any],
    clip_table: pd.DataFrame,
    clip_frames: dict[str, Callable[[], np.ndarray]],
    clip_latents: np.ndarray,
    history: pd.DataFrame,
    autoencoder: dict[str, Any],
    motion_reference_short_side: int,
) -> tuple[dict[str, float], np.ndarray]:
    """What the autoencoders keep of the clips, on whole frames: the VAE's reconstruction PSNR on each
    split (the decode of the clips' cached latents), how much of the val clips' motion survives it
    (curation's motion score of the reconstruction over the clip's), and the light decoder's PSNR on the val
    latents; plus a video of val clips beside both. At most `autoencoder.evaluation_clips` clips per split
    (null: all)."""
    metrics: dict[str, float] = {}
    vae.eval()
    height, width = int(clip_table["height"].iloc[0]), int(clip_table["width"].iloc[0])
    for split in ("train", "val"):
        # clip_latents rows are clip_table's rows, in order (encode_latents).
        rows = np.flatnonzero((clip_table["split"] == split).to_numpy())[: autoencoder["evaluation_clips"]]
        clips = stack_clips(clip_frames, clip_table["clip_id"].iloc[rows])
        restored = ae.to_uint8(vae_targets(vae, clip_latents[rows], height, width))
        metrics[f"vae_{split}_psnr_db"] = psnr_db(restored, clips, UINT8_PEAK)
    # The loop ends on val: `clips` and `restored` are the first val clips, in clip_table order.
    val, motion = (
        clips,
        motion_survival(
            restored,
            clips_motion=clip_table["motion_score"].iloc[rows],
            reference_short_side=motion_reference_short_side,
        ),
    )
    light = load_light_autoencoder(light_autoencoder)
    light_decoded = light_decode(light, clip_latents[rows], height, width)
    temporal, spatial = ae.compression(vae)
    metrics |= {
        **motion,
        "light_val_psnr_db": psnr_db(light_decoded, val, UINT8_PEAK),
        "vae_params": sum(p.numel() for p in vae.parameters()),
        "vae_pretrained": int(bool(autoencoder["pretrained_path"])),
        "vae_train_steps": int(history["step"].max()) if len(history) else 0,
        "vae_temporal_compression": temporal,
        "vae_spatial_compression": spatial,
    }
    logger.info(
        "VAE on val: %.2f dB (train %.2f dB), motion kept %.2f (rank corr %.2f); light decoder %.2f dB",
        metrics["vae_val_psnr_db"],
        metrics["vae_train_psnr_db"],
        metrics["vae_val_motion_ratio"],
        metrics.get("vae_val_motion_spearman", float("nan")),
        metrics["light_val_psnr_db"],
    )
    shown = slice(0, 4)
    # (N, T, H, 3W, 3): original | VAE | light decoder, clips stacked vertically
    panels = np.concatenate([val[shown], restored[shown], light_decoded[shown]], axis=3)
    return metrics, np.concatenate(list(panels), axis=1)


def motion_survival(
    restored: np.ndarray, clips_motion: pd.Series, reference_short_side: int
) -> dict[str, float]:
    """How much motion a reconstruction keeps: the median over clips of its motion score over the clip's, and
    the rank correlation of the two (does a faster clip stay faster?)."""
    kept = np.array([motion_score(clip, reference_short_side) for clip in restored])
    source = clips_motion.to_numpy(dtype=float)
    survival = {"vae_val_motion_ratio": float(np.median(kept / np.maximum(source, 1e-6)))}
    spearman = rank_correlation(kept, source)
    if np.isfinite(spearman):  # undefined for one clip, or when every clip moves alike
        survival["vae_val_motion_spearman"] = spearman
    return survival


@torch.no_grad()
def light_decode(light: Any, latents: np.ndarray, height: int, width: int, batch_size: int = 8) -> np.ndarray:
    """uint8 frames (N, T, H, W, 3) the light decoder makes of raw latents (N, C, t, h, w)."""
    chunks = [torch.as_tensor(latents[i : i + batch_size]) for i in range(0, len(latents), batch_size)]
    return np.concatenate([ae.to_uint8(light.decoder(chunk, height, width)) for chunk in chunks])


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
    train = latents_all[torch.tensor((table["split"] == "train").to_numpy())]  # pandas' array is read-only
    stats = ae.latent_stats(train, autoencoder["latent_scale"])
    return latents_all.numpy(), torch.cat(first_frames).numpy(), table, stats


def train_light_autoencoder(
    vae: Any,
    clip_latents: np.ndarray,
    latent_table: pd.DataFrame,
    clip_frames: dict[str, Callable[[], np.ndarray]],
    latent_stats: dict[str, list[float]],
    checkpoints: Path,
    autoencoder: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, float]]:
    """Distil the light encoder and decoder from the VAE; returns the model, its history and its figures."""
    light = autoencoder["light"]
    temporal, spatial = ae.compression(vae)
    linear_path = None if vae.patch_encoder is None else (vae.patch_encoder, vae.patch_decoder)
    config = LightAutoencoderConfig(
        clip_latents.shape[1], spatial, temporal, tuple(light["widths"]), linear_path=linear_path is not None
    )
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
    task = LightAutoencoderTask(config, split, latent_stats, linear_path)
    result = train(task, config_from_params(light["training"]), checkpoints)
    model = task.build_model()
    model.load_state_dict(result.state_dict)
    figures = {f"light_{k}": v for k, v in task.validate(model).items()}
    figures["light_params"] = sum(p.numel() for p in model.parameters())
    return light_autoencoder_file(model.eval()), pd.DataFrame(result.history), figures
