"""The video autoencoder: a thin layer over diffusers' LTX-Video VAE (`AutoencoderKLLTXVideo`), held in a
`VideoAutoencoder` (`models/video_autoencoder.py`) that can add a PCA-fitted linear path beside it.

The VAE is a causal 3D conv VAE. Its encoder sees frame 0 on its own (causal padding repeats the first frame),
so 1 + rk frames become 1 + k latent frames (r the temporal compression) and frame 0's latent is the clean
image latent the I2V denoiser is conditioned on. Presets are `AutoencoderKLLTXVideo` kwargs plus
`linear_path`: "ltx" is the real LTX-Video 0.9.0 VAE (32x spatial, 8x temporal, 128 channels; for
pretrained weights only), "tiny" (8x spatial, 2x temporal, 16 channels), "tiny_linear" (the same at 32
channels with the linear path) and "micro" (16x, 8x, with the linear path, for tests) are the 0.9.5 layout of
the same architecture, shrunk to train from scratch on a CPU.

Videos are float tensors (B, 3, T, H, W) in [-1, 1]; latents are (B, C, t, h, w). Gradient mode is the
caller's: wrap inference in `torch.no_grad()`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # diffusers takes 2.6 s to import, and every `kedro run` imports every pipeline
    from mobilei2v_pipeline.models.video_autoencoder import VideoAutoencoder


def _small_ltx(
    widths: tuple[int, ...],
    layers: tuple[int, ...],
    latent_channels: int = 16,
    patch_size: int = 2,
    linear_path: bool = True,
) -> dict:
    """LTX kwargs at small width, in LTX-Video 0.9.5's layout: patch_size x patch_size patches, then one 2x
    space-and-time stage per width after the first (patch 4 and one stage: 8x spatial, 2x temporal; patch 2
    and three stages: 16x and 8x).

    0.9.5's down and up samplers carry a parameter-free residual (space-to-depth averaged over channel groups,
    and its inverse), so low frequencies pass from the start. `layers` has one entry per stage plus the mid
    block; the decoder mirrors the encoder. `linear_path` adds the PCA-fitted linear path beside them
    (video_autoencoder.py).
    """
    stages = len(widths) - 1
    return {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": latent_channels,
        "block_out_channels": widths,
        "decoder_block_out_channels": widths[:-1],
        "down_block_types": ("LTXVideo095DownBlock3D",) * stages,
        "layers_per_block": layers,
        "decoder_layers_per_block": layers,
        "spatio_temporal_scaling": (True,) * stages,
        "decoder_spatio_temporal_scaling": (True,) * stages,
        "decoder_inject_noise": (False,) * (stages + 1),
        "downsample_type": ("spatiotemporal",) * stages,
        "upsample_residual": (True,) * stages,
        "upsample_factor": (2,) * stages,
        "timestep_conditioning": False,
        "patch_size": patch_size,
        "patch_size_t": 1,
        "encoder_causal": True,
        "decoder_causal": False,
        "linear_path": linear_path,
    }


VAE_PRESETS: dict[str, dict] = {
    # Lightricks/LTX-Video 0.9.0 `vae/config.json` (the diffusers defaults): 4x4 patches then three 2x stages.
    "ltx": {
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 128,
        "block_out_channels": (128, 256, 512, 512),
        "decoder_block_out_channels": (128, 256, 512, 512),
        "down_block_types": ("LTXVideoDownBlock3D",) * 4,
        "layers_per_block": (4, 3, 3, 3, 4),
        "decoder_layers_per_block": (4, 3, 3, 3, 4),
        "spatio_temporal_scaling": (True, True, True, False),
        "decoder_spatio_temporal_scaling": (True, True, True, False),
        "decoder_inject_noise": (False,) * 5,
        "downsample_type": ("conv",) * 4,
        "upsample_residual": (False,) * 4,
        "upsample_factor": (1,) * 4,
        "timestep_conditioning": False,
        "patch_size": 4,
        "patch_size_t": 1,
        "encoder_causal": True,
        "decoder_causal": False,
        "linear_path": False,
    },
    # 8x spatial, 2x temporal, 16 channels (24x): a 5-frame clip becomes 3 latent frames, so motion has two
    # latent frames to live in. One stage after 4x4 patches trains about twice as fast per step as patch 2
    # and two stages (8x, 4x), and 3.5x faster per second (docs/autoencoder.md).
    "tiny": _small_ltx(widths=(64, 128), layers=(1, 1), patch_size=4, linear_path=False),
    # The default: the same compression at 32 channels (12x) with the PCA-fitted linear path, 29.1 dB and
    # 93% of the motion kept after 200 steps. The teacher continues its latents from the first frame only
    # with the first-frame residual (models/config.py) and one shared latent scale (docs/autoencoder.md).
    "tiny_linear": _small_ltx(widths=(64, 128), layers=(0, 0), latent_channels=32, patch_size=4),
    # For tests: 16x spatial and 8x temporal keep the latents (and the denoisers on them) small.
    "micro": _small_ltx(widths=(8, 16, 32, 32), layers=(0, 0, 1, 1)),
}


INITIAL_LOG_VARIANCE = -8.0  # posterior std 0.018 at init


def build_vae(preset: str | dict, fit_clips: np.ndarray | None = None) -> VideoAutoencoder:
    """A freshly initialised VAE from a preset name or a dict of `AutoencoderKLLTXVideo` kwargs and
    `linear_path`; with `fit_clips` (uint8, N T H W 3), its linear path is fitted to them by PCA."""
    if isinstance(preset, str):
        if preset not in VAE_PRESETS:
            raise ValueError(f"unknown VAE preset {preset!r}; known: {sorted(VAE_PRESETS)}")
        preset = VAE_PRESETS[preset]
    from mobilei2v_pipeline.models.video_autoencoder import MAX_FIT_CLIPS, VideoAutoencoder

    ltx = dict(preset)
    linear_path = ltx.pop("linear_path", False)
    vae = VideoAutoencoder(ltx_kwargs=ltx, linear_path=linear_path)
    # From scratch, the random output layer emits noise the size of the signal; the fastest way to cut the
    # loss is then to shrink it, which starves the layers below of gradient and stalls training at the mean
    # colour. Starting the output at zero (the mean of [-1, 1] video) shortens that plateau a lot (tiny
    # preset on synthetic clips: 14.9 dB instead of 13.4 dB after 1000 steps).
    # The encoder's last output channel is the posterior's log-variance (shared by all latent channels). At
    # its random init the posterior std is about 1, as large as the latents: the decoder then sees mostly
    # noise and learns the mean colour. Starting it at INITIAL_LOG_VARIANCE lets reconstruction be learned
    # first; the KL term still shapes it.
    # With the linear path, the encoder's mean starts at zero too: the VAE then starts as the path's PCA
    # code, and the deep networks learn what it misses.
    with torch.no_grad():
        vae.ltx.decoder.conv_out.conv.weight.zero_()
        vae.ltx.decoder.conv_out.conv.bias.zero_()
        encoder_out = vae.ltx.encoder.conv_out.conv
        if vae.patch_encoder is not None:
            encoder_out.weight.zero_()
            encoder_out.bias.zero_()
        encoder_out.weight[-1].zero_()
        encoder_out.bias[-1].fill_(INITIAL_LOG_VARIANCE)
    if fit_clips is not None and vae.patch_encoder is not None:
        vae.fit_linear_path(_model_input(vae, to_model_range(fit_clips[:MAX_FIT_CLIPS])))
    return vae


def load_pretrained_vae(path: str | Path) -> VideoAutoencoder:
    """Load a VAE saved in diffusers format from a local folder, never from the network.

    `path` is a folder with `config.json` and the weights: a VAE this project trained, a diffusers
    `AutoencoderKLLTXVideo`, or a pipeline folder with a `vae/` subfolder (as in a local copy of
    Lightricks/LTX-Video).
    """
    path = Path(path)
    folder = path if (path / "config.json").is_file() else path / "vae"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"no diffusers VAE at {path}: expected config.json and diffusion_pytorch_model.safetensors there "
            f"or in {path / 'vae'} (e.g. the vae/ folder of a local Lightricks/LTX-Video copy)"
        )
    from diffusers import AutoencoderKLLTXVideo

    from mobilei2v_pipeline.models.video_autoencoder import VideoAutoencoder

    if json.loads((folder / "config.json").read_text()).get("_class_name") == VideoAutoencoder.__name__:
        return VideoAutoencoder.from_pretrained(folder, local_files_only=True).eval()
    ltx = AutoencoderKLLTXVideo.from_pretrained(folder, local_files_only=True)
    return VideoAutoencoder.wrapping(ltx).eval()


def compression(vae: VideoAutoencoder) -> tuple[int, int]:
    """(temporal, spatial) compression factors."""
    return vae.temporal_compression_ratio, vae.spatial_compression_ratio


def _check_frames(frames: int, temporal: int) -> None:
    if frames < 1 or (frames - 1) % temporal:
        raise ValueError(
            f"{frames} frames: the VAE needs 1 + {temporal}k frames "
            f"(1, {1 + temporal}, {1 + 2 * temporal}, ...), "
            f"as it encodes the first frame on its own and compresses the rest {temporal}x in time"
        )


def latent_shape(vae: VideoAutoencoder, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(C, t, h, w) of the latent of a `frames` x `height` x `width` video; height and width are padded up."""
    temporal, spatial = compression(vae)
    _check_frames(frames, temporal)
    return (
        vae.latent_channels,
        1 + (frames - 1) // temporal,
        math.ceil(height / spatial),
        math.ceil(width / spatial),
    )


def to_model_range(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames (B, T, H, W, 3) -> float video (B, 3, T, H, W) in [-1, 1]."""
    frames = torch.as_tensor(frames)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (B, T, H, W, 3), got shape {tuple(frames.shape)}")
    return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """Float video (B, 3, T, H, W) in [-1, 1] -> uint8 frames (B, T, H, W, 3); values outside are clipped."""
    video = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round()
    return video.to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()


def _model_input(vae: VideoAutoencoder, video: torch.Tensor) -> torch.Tensor:
    """Float video on the VAE's device, padded at the bottom/right to a multiple of the compression."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"expected a video (B, 3, T, H, W), got shape {tuple(video.shape)}")
    temporal, spatial = compression(vae)
    _check_frames(video.shape[2], temporal)
    if video.dtype == torch.uint8:
        video = video.float() / 127.5 - 1.0
    video = video.to(device=vae.device, dtype=vae.dtype)
    pad_h, pad_w = -video.shape[3] % spatial, -video.shape[4] % spatial
    if pad_h or pad_w:
        # Replicate, not zeros: a black border would be a hard edge for the encoder to spend latents on.
        video = F.pad(video, (0, pad_w, 0, pad_h, 0, 0), mode="replicate")
    return video


def encode(
    vae: VideoAutoencoder,
    video: torch.Tensor,
    sample: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Latents (B, C, t, h, w) of a video (B, 3, T, H, W), uint8 or float in [-1, 1].

    The posterior mean by default, a draw from the posterior with `sample=True`.
    """
    posterior = vae.encode(_model_input(vae, video)).latent_dist
    return posterior.sample(generator=generator) if sample else posterior.mode()


def encode_first_frame(vae: VideoAutoencoder, video: torch.Tensor) -> torch.Tensor:
    """The I2V conditioning latent (B, C, 1, h, w): frame 0 encoded on its own.

    The encoder is causal, so this equals latent frame 0 of the whole video (up to float rounding).
    """
    return encode(vae, video[:, :, :1])


def decode(vae: VideoAutoencoder, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Video (B, 3, T, height, width) in [-1, 1] from latents (B, C, t, h, w), cropped to the asked size."""
    return _decode(vae, latents, height, width).clamp(-1.0, 1.0)


def _decode(vae: VideoAutoencoder, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
    spatial = vae.spatial_compression_ratio
    expected = (math.ceil(height / spatial), math.ceil(width / spatial))
    if tuple(latents.shape[-2:]) != expected:
        raise ValueError(
            f"latents of spatial size {tuple(latents.shape[-2:])} cannot decode to {height}x{width}: "
            f"expected {expected} at {spatial}x compression"
        )
    # LTX 0.9.1+ decoders are conditioned on a decode timestep; 0 means "clean latents", as in diffusers.
    temb = None
    if vae.timestep_conditioning:
        temb = torch.zeros(latents.shape[0], device=latents.device, dtype=latents.dtype)
    video = vae.decode(latents.to(device=vae.device, dtype=vae.dtype), temb).sample
    return video[..., :height, :width]


def vae_loss(
    vae: VideoAutoencoder,
    video: torch.Tensor,
    kl_weight: float,
    generator: torch.Generator | None = None,
    temporal_weight: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss: L1 reconstruction of a posterior sample + temporal_weight * L1 of its frame-to-frame
    differences + kl_weight * KL to N(0, I).

    The temporal term weighs what moves: a decoder that blurs over time (shows a moving clip as a still) pays
    for each lost difference, however small the moving part is. All terms are means per element (pixel,
    latent value), so the weights do not depend on the video size; diffusers' `kl()` sums over only some dims
    of a 5D latent, so it is written out here.
    """
    target = _model_input(vae, video)
    posterior = vae.encode(target).latent_dist
    latents = posterior.sample(generator=generator)
    height, width = video.shape[-2:]
    decoded, target = _decode(vae, latents, height, width), target[..., :height, :width]
    reconstruction = F.l1_loss(decoded, target)
    temporal = F.l1_loss(decoded.diff(dim=2), target.diff(dim=2))
    kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()
    loss = reconstruction + temporal_weight * temporal + kl_weight * kl
    terms = {"reconstruction": reconstruction, "temporal": temporal, "kl": kl}
    return loss, {name: float(value.detach()) for name, value in terms.items()}


LATENT_SCALES = ("per_channel", "shared")


def latent_stats(latents: torch.Tensor, scale: str = "per_channel") -> dict[str, list[float]]:
    """Per-channel mean and std of latents (N, C, T, H, W), as plain lists (they go into a JSON file).

    `scale="shared"` gives every channel the same std (the root mean square of the per-channel ones), so the
    channels keep their relative sizes: for an orthonormal code such as the linear path's PCA, a squared
    error on the normalised latents is then a squared error on the pixels, and the denoiser's loss weighs
    the strong components as the picture does. "per_channel" (LTX-Video's normalisation) makes every channel
    unit-variance, the weakest PCA components (near-white detail) as loud as the image's layout.
    """
    if scale not in LATENT_SCALES:
        raise ValueError(f"latent scale {scale!r}: expected one of {LATENT_SCALES}")
    dims = (0, 2, 3, 4)
    std = latents.float().std(dim=dims)
    if scale == "shared":
        std = std.pow(2).mean().sqrt().expand_as(std)
    return {"mean": latents.float().mean(dim=dims).tolist(), "std": std.tolist()}


def _stats_tensors(stats: dict[str, list[float]], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(stats["mean"], device=like.device, dtype=like.dtype).view(1, -1, 1, 1, 1)
    # A dead channel has std 0; dividing by it would blow the denoiser's inputs up.
    std = (
        torch.tensor(stats["std"], device=like.device, dtype=like.dtype).clamp_min(1e-6).view(1, -1, 1, 1, 1)
    )
    return mean, std


def normalize(latents: torch.Tensor, stats: dict[str, list[float]]) -> torch.Tensor:
    """Latents with zero mean and unit std per channel: what the denoiser is trained on."""
    mean, std = _stats_tensors(stats, latents)
    return (latents - mean) / std


def denormalize(latents: torch.Tensor, stats: dict[str, list[float]]) -> torch.Tensor:
    """Inverse of `normalize`: back to the VAE's latent scale, ready to decode."""
    mean, std = _stats_tensors(stats, latents)
    return latents * std + mean
