"""The exported graphs as torch modules with named, static inputs: what a phone app calls, in order.

The app encodes the image once (`encoder` or `light_encoder`), runs the denoiser `steps` times on normalised
latents, and decodes once (`decoder` or `light_decoder`). The latent statistics are folded into the encoders
and decoders, so the app never sees them.
"""

from __future__ import annotations

import torch
from torch import nn

from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import LatentGrid
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.light_autoencoder import LightAutoencoder
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser

# Each graph's input names, in the order of its forward(), and its one output's name.
INPUTS = {
    "denoiser": ["latents", "timesteps", "motion"],
    "decoder": ["latents"],
    "light_decoder": ["latents"],
    "encoder": ["image"],
    "light_encoder": ["image"],
}
OUTPUTS = {
    "denoiser": "velocity",
    "decoder": "video",
    "light_decoder": "video",
    "encoder": "latent",
    "light_encoder": "latent",
}


class _Decoder(nn.Module):
    """Normalised latents (1, C, t, h, w) -> video (1, 3, T, H, W) in [-1, 1]."""

    def __init__(self, decoder: nn.Module, stats: dict[str, list[float]], height: int, width: int):
        super().__init__()
        self.decoder, self.stats, self.height, self.width = decoder, stats, height, width

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        raw = ae.denormalize(latents, self.stats)
        if isinstance(self.decoder, LightAutoencoder):
            return self.decoder.decoder(raw, self.height, self.width)
        return ae.decode(self.decoder, raw, self.height, self.width)


class _Encoder(nn.Module):
    """Image (1, 3, H, W) in [-1, 1] -> normalised latent frame 0 (1, C, 1, h, w)."""

    def __init__(self, encoder: nn.Module, stats: dict[str, list[float]]):
        super().__init__()
        self.encoder, self.stats = encoder, stats

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if isinstance(self.encoder, LightAutoencoder):
            latent = self.encoder.encoder(image)
        else:
            latent = ae.encode_first_frame(self.encoder, image.unsqueeze(2))
        return ae.normalize(latent, self.stats)


def export_graphs(
    student: MobileI2VDenoiser,
    vae: nn.Module,
    light: LightAutoencoder,
    stats: dict[str, list[float]],
    grid: LatentGrid,
    height: int,
    width: int,
) -> dict[str, nn.Module]:
    """Every graph to export, by name (the keys of INPUTS), in eval mode."""
    graphs = {
        "denoiser": MobileDenoiser(student, grid),
        "decoder": _Decoder(vae, stats, height, width),
        "light_decoder": _Decoder(light, stats, height, width),
        "encoder": _Encoder(vae, stats),
        "light_encoder": _Encoder(light, stats),
    }
    return {name: graph.eval() for name, graph in graphs.items()}
