"""The light autoencoder as a task of the shared training loop: distilled from the VAE on the clips' latents
(decoder: the VAE's decode of each clip's latents; encoder: the VAE's latent of each clip's first frame)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.light_autoencoder import LightAutoencoder, LightAutoencoderConfig
from mobilei2v_pipeline.psnr import MODEL_RANGE_PEAK, psnr_db
from mobilei2v_pipeline.training.loop import TrainingTask, fingerprint


@torch.no_grad()
def vae_targets(vae, latents: np.ndarray, height: int, width: int, batch_size: int = 8) -> torch.Tensor:
    """The VAE's decode (N, 3, T, H, W) in [-1, 1] of raw latents (N, C, t, h, w): the decoder's target."""
    chunks = [torch.as_tensor(latents[i : i + batch_size]) for i in range(0, len(latents), batch_size)]
    return torch.cat([ae.decode(vae, chunk, height, width) for chunk in chunks])


class LightAutoencoderTask(TrainingTask):
    name = "light_autoencoder"

    def __init__(
        self,
        config: LightAutoencoderConfig,
        split: dict[str, dict[str, torch.Tensor]],
        stats: dict[str, list[float]],
        vae_linear_path: tuple[torch.nn.Module, torch.nn.Module] | None = None,
    ):
        """`split[name]` holds `latents` (raw, N C t h w), `videos` (the VAE's decodes) and `images` (the
        clips' first frames, N 3 H W in [-1, 1]) for "train" and "val"; `vae_linear_path` is the VAE's
        (patch encoder, patch decoder), which the light pair's linear paths start from."""
        self.config, self.split, self.stats, self.vae_linear_path = config, split, stats, vae_linear_path
        train = split["train"]
        self.fingerprint = fingerprint(dataclasses.asdict(config), train["latents"], train["videos"])

    def build_model(self) -> torch.nn.Module:
        model = LightAutoencoder(self.config)
        if self.config.linear_path:
            model.copy_linear_path(*self.vae_linear_path)
        return model

    def num_examples(self) -> int:
        return len(self.split["train"]["latents"])

    def batch(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices)
        return {key: value[index].to(device) for key, value in self.split["train"].items()}

    def _terms(self, model, batch) -> dict[str, torch.Tensor]:
        height, width = batch["videos"].shape[-2:]
        decoded = model.decoder(batch["latents"], height, width)
        encoded = model.encoder(batch["images"])
        target = batch["latents"][:, :, :1]
        return {
            "decoder_l1": F.l1_loss(decoded, batch["videos"]),
            "encoder_mse": F.mse_loss(ae.normalize(encoded, self.stats), ae.normalize(target, self.stats)),
            "decoded": decoded,
        }

    def loss(self, model, batch, generator):
        terms = self._terms(model, batch)
        loss = terms["decoder_l1"] + terms["encoder_mse"]
        return loss, {
            "loss": loss.item(),
            "decoder_l1": terms["decoder_l1"].item(),
            "encoder_mse": terms["encoder_mse"].item(),
        }

    @torch.no_grad()
    def validate(self, model) -> dict[str, float]:
        val = self.split["val"]
        terms = self._terms(model.eval(), val)
        model.train()
        return {
            "val_decoder_psnr_vs_vae_db": psnr_db(terms["decoded"], val["videos"], MODEL_RANGE_PEAK),
            "val_encoder_mse": terms["encoder_mse"].item(),
        }

    @torch.no_grad()
    def sample(self, model) -> np.ndarray:
        """The first val clip as the VAE decodes it beside the light decoder's version."""
        val = self.split["val"]
        decoded = model.eval().decoder(val["latents"][:1], *val["videos"].shape[-2:])
        model.train()
        return np.concatenate([ae.to_uint8(val["videos"][:1])[0], ae.to_uint8(decoded)[0]], axis=2)
