"""The light encoder and decoder: the VAE's latent layout, any frame size, and learning from the VAE."""

from __future__ import annotations

import pytest
import torch

from mobilei2v_pipeline.models.light_autoencoder import (
    LightAutoencoder,
    LightAutoencoderConfig,
    light_autoencoder_file,
    load_light_autoencoder,
)


@pytest.mark.parametrize(
    ("config", "latent", "size", "frames"),
    [
        (LightAutoencoderConfig(16, 16, 8), (16, 2, 8, 14), (128, 224), 9),
        (LightAutoencoderConfig(128, 32, 8, (32, 24, 16, 8)), (128, 3, 2, 3), (40, 72), 17),
    ],
)
def test_shapes_follow_the_vaes_compression(config, latent, size, frames):
    model = LightAutoencoder(config).eval()
    with torch.no_grad():
        video = model.decoder(torch.randn(1, *latent), *size)
        first = model.encoder(torch.randn(1, 3, *size))
    assert video.shape == (1, 3, frames, *size) and video.abs().max() <= 1
    assert first.shape == (1, latent[0], 1, *latent[2:])  # non-multiple sizes are padded up


def test_bad_widths_are_explained():
    with pytest.raises(ValueError, match="one entry per 2x stage"):
        LightAutoencoderConfig(16, 16, 8, (32, 16))


def test_it_learns_a_fixed_decode_and_round_trips_through_its_file():
    torch.manual_seed(0)
    model = LightAutoencoder(LightAutoencoderConfig(4, 8, 2, (16, 8)))
    latents = torch.randn(4, 4, 2, 2, 3)
    target = torch.linspace(-0.8, 0.8, 24).expand(4, 3, 3, 16, 24)  # a smooth ramp to learn
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(model.decoder(latents, 16, 24), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    loaded = load_light_autoencoder(light_autoencoder_file(model))
    with torch.no_grad():
        torch.testing.assert_close(loaded.decoder(latents, 16, 24), model.eval().decoder(latents, 16, 24))


def test_the_linear_paths_start_as_the_vaes():
    from mobilei2v_pipeline.models import autoencoder as ae

    frames = torch.linspace(-0.9, 0.9, 112).expand(2, 3, 9, 64, 112) * torch.linspace(0.2, 1, 9).view(9, 1, 1)
    vae = ae.build_vae("micro", fit_clips=ae.to_uint8(frames)).eval()
    light = LightAutoencoder(LightAutoencoderConfig(16, 16, 8, (32, 16, 8), linear_path=True)).eval()
    light.copy_linear_path(vae.patch_encoder, vae.patch_decoder)
    with torch.no_grad():
        latents = ae.encode(vae, frames)
        torch.testing.assert_close(light.decoder(latents, 64, 112), ae.decode(vae, latents, 64, 112))
        torch.testing.assert_close(
            light.encoder(frames[:, :, 0]), ae.encode_first_frame(vae, frames), atol=1e-4, rtol=0
        )
