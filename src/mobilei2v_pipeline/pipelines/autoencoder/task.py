"""The autoencoder as a task of the shared training loop: reconstruction + KL on curated clips."""

from __future__ import annotations

import numpy as np
import torch

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.i2v import eval_mode
from mobilei2v_pipeline.psnr import UINT8_PEAK, psnr_db
from mobilei2v_pipeline.training.loop import TrainingTask, fingerprint


class AutoencoderTask(TrainingTask):
    name = "autoencoder"

    def __init__(
        self,
        vae_preset: str | dict,
        train: np.ndarray,
        val: np.ndarray,
        kl_weight: float,
        crop_size: int | None = None,
        temporal_weight: float = 0.0,
    ):
        self.vae_preset, self.train_clips, self.val_clips, self.kl_weight = vae_preset, train, val, kl_weight
        self.crop_size, self.temporal_weight = crop_size, temporal_weight
        self.fingerprint = fingerprint(vae_preset, kl_weight, crop_size, temporal_weight, train)

    def build_model(self) -> torch.nn.Module:
        return ae.build_vae(self.vae_preset, fit_clips=self.train_clips)

    def num_examples(self) -> int:
        return len(self.train_clips)

    def batch(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        return {"video": ae.to_model_range(self.train_clips[indices]).to(device)}

    def loss(self, model, batch, generator):
        model.train()
        video = random_crop(batch["video"], self.crop_size, generator)
        loss, terms = ae.vae_loss(model, video, self.kl_weight, generator, self.temporal_weight)
        return loss, {"loss": loss.item(), **{k: float(v) for k, v in terms.items()}}

    def validate(self, model) -> dict[str, float]:
        return {"val_psnr_db": reconstruction_psnr(model, self.val_clips)}

    def sample(self, model) -> np.ndarray:
        """The first val clip beside its reconstruction."""
        original = self.val_clips[:1]
        return np.concatenate([original[0], reconstruct(model, original)[0]], axis=2)


def random_crop(video: torch.Tensor, size: int | None, generator: torch.Generator) -> torch.Tensor:
    """One random size x size window of each clip (B, 3, T, H, W), the same for all its frames. Small windows
    give the convolutional VAE many more distinct patches per step than whole frames (measured: val PSNR
    17.2 dB after 2,000 steps on 64 px crops, against the mean colour, ~13 dB, on whole frames)."""
    if size is None:
        return video
    height, width = video.shape[-2:]
    if size > min(height, width):
        raise ValueError(f"autoencoder crop_size {size} is larger than the {height}x{width} clips")
    crops = []
    for clip in video:
        top = int(torch.randint(height - size + 1, (1,), generator=generator))
        left = int(torch.randint(width - size + 1, (1,), generator=generator))
        crops.append(clip[..., top : top + size, left : left + size])
    return torch.stack(crops)


@torch.no_grad()
def reconstruct(vae, clips: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Encode and decode uint8 clips (N, T, H, W, 3) with the posterior mean."""
    out = []
    with eval_mode(vae):
        for start in range(0, len(clips), batch_size):
            video = ae.to_model_range(clips[start : start + batch_size])
            latents = ae.encode(vae, video)
            out.append(ae.to_uint8(ae.decode(vae, latents, video.shape[-2], video.shape[-1])))
    return np.concatenate(out)


def reconstruction_psnr(vae, clips: np.ndarray) -> float:
    """PSNR in dB of the reconstruction of uint8 clips, over all their pixels."""
    return psnr_db(reconstruct(vae, clips), clips, UINT8_PEAK)
