"""The project's VAE: diffusers' LTX-Video VAE (`AutoencoderKLLTXVideo`) and an optional linear path.

The linear path is one strided Conv3d from each t x s x s patch of the (causally padded) video to the latent
channels, and its transpose back; its output is added to the LTX encoder's posterior mean and to the LTX
decoder's output. Fitted by PCA of the train clips' patches before training, it starts the autoencoder at
the best linear reconstruction (default data, 8x8x2 patches, 32 channels: 29.2 dB, motion ratio 0.95, at
step 0), so the deep LTX networks only learn what is left. Without it, the deep VAE trained from scratch on
a CPU stays near 22 dB after 2000 steps (docs/autoencoder.md). A VAE without the path (the real LTX-Video
weights, the `ltx` preset) computes exactly what `AutoencoderKLLTXVideo` does.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKLLTXVideo, ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from torch import nn

MAX_FIT_CLIPS = 64  # the PCA's sample of clips: enough for a 384 x 384 covariance, bounded in memory


class VideoAutoencoder(ModelMixin, ConfigMixin):
    """`ltx_kwargs`: the `AutoencoderKLLTXVideo` constructor arguments; `linear_path`: add the linear path.

    `encode` and `decode` return what `AutoencoderKLLTXVideo`'s do (`.latent_dist`, `.sample`)."""

    @register_to_config
    def __init__(self, ltx_kwargs: dict[str, Any], linear_path: bool = False):
        super().__init__()
        # Not `ltx`: diffusers resolves attribute names in the config before the submodules.
        self.ltx = AutoencoderKLLTXVideo(**ltx_kwargs)
        t, s, c = self.temporal_compression_ratio, self.spatial_compression_ratio, self.latent_channels
        self.patch_encoder = nn.Conv3d(3, c, (t, s, s), stride=(t, s, s)) if linear_path else None
        self.patch_decoder = nn.ConvTranspose3d(c, 3, (t, s, s), stride=(t, s, s)) if linear_path else None

    @classmethod
    def wrapping(cls, ltx: AutoencoderKLLTXVideo) -> VideoAutoencoder:
        """A VideoAutoencoder without the linear path computing what a loaded LTX VAE does."""
        config = {k: v for k, v in ltx.config.items() if not k.startswith("_")}
        vae = cls(ltx_kwargs=config)
        vae.ltx.load_state_dict(ltx.state_dict())
        return vae.to(dtype=ltx.dtype)

    @property
    def temporal_compression_ratio(self) -> int:
        return self.ltx.temporal_compression_ratio

    @property
    def spatial_compression_ratio(self) -> int:
        return self.ltx.spatial_compression_ratio

    @property
    def latent_channels(self) -> int:
        return self.ltx.config.latent_channels

    @property
    def timestep_conditioning(self) -> bool:
        return self.ltx.config.timestep_conditioning

    def _causal_pad(self, video: torch.Tensor) -> torch.Tensor:
        """Frame 0 repeated in front, as LTX's causal encoder sees it: 1 + tk frames become k + 1 patches."""
        extra = self.temporal_compression_ratio - 1
        return torch.cat([video[:, :, :1].expand(-1, -1, extra, -1, -1), video], dim=2)

    def encode(self, video: torch.Tensor) -> AutoencoderKLOutput:
        posterior = self.ltx.encode(video).latent_dist
        if self.patch_encoder is None:
            return AutoencoderKLOutput(latent_dist=posterior)
        mean = posterior.mean + self.patch_encoder(self._causal_pad(video))
        return AutoencoderKLOutput(
            latent_dist=DiagonalGaussianDistribution(torch.cat([mean, posterior.logvar], 1))
        )

    def decode(self, latents: torch.Tensor, temb: torch.Tensor | None = None) -> DecoderOutput:
        video = self.ltx.decode(latents, temb).sample
        if self.patch_decoder is not None:
            video = video + self.patch_decoder(latents)[:, :, self.temporal_compression_ratio - 1 :]
        return DecoderOutput(sample=video)

    @torch.no_grad()
    def fit_linear_path(self, videos: torch.Tensor) -> None:
        """Set the linear path to the PCA of the patches of `videos` (N, 3, T, H, W) in [-1, 1], sizes
        multiples of the compression: the encoder projects a patch, less the mean colour, on the top
        `latent_channels` principal directions; the decoder maps the coefficients back. Up to
        MAX_FIT_CLIPS clips are used."""
        t, s, c = self.temporal_compression_ratio, self.spatial_compression_ratio, self.latent_channels
        padded = self._causal_pad(videos[:MAX_FIT_CLIPS].double())
        n, _, frames, height, width = padded.shape
        patches = (
            padded.reshape(n, 3, frames // t, t, height // s, s, width // s, s)
            .permute(0, 2, 4, 6, 1, 3, 5, 7)  # (n, t', h', w', 3, t, s, s): the Conv3d weight's layout
            .reshape(-1, 3 * t * s * s)
        )
        colour = videos[:MAX_FIT_CLIPS].double().mean(dim=(0, 2, 3, 4))
        centred = patches - colour.repeat_interleave(t * s * s)
        if len(centred) >= centred.shape[1]:
            _, vectors = torch.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
            basis = vectors[:, -c:].flip(1).T  # (c, 3 t s s), strongest direction first
        else:  # fewer patches than dimensions (small test clips, large patches): the Gram matrix is smaller
            _, vectors = torch.linalg.eigh(centred @ centred.T)
            basis = vectors[:, -c:].flip(1).T @ centred
            basis /= basis.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.patch_encoder.weight.copy_(basis.view(c, 3, t, s, s))
        self.patch_encoder.bias.copy_(-basis @ colour.repeat_interleave(t * s * s))
        self.patch_decoder.weight.copy_(basis.view(c, 3, t, s, s))
        self.patch_decoder.bias.copy_(colour)
