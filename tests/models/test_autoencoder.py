"""The video autoencoder wrapper: shapes and padding, causality of the first frame, training signal, I/O."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mobilei2v_pipeline.models.autoencoder import (
    VAE_PRESETS,
    build_vae,
    compression,
    decode,
    denormalize,
    encode,
    encode_first_frame,
    latent_shape,
    latent_stats,
    load_pretrained_vae,
    normalize,
    to_model_range,
    to_uint8,
    vae_loss,
)
from mobilei2v_pipeline.models.config import get_preset
from mobilei2v_pipeline.psnr import MODEL_RANGE_PEAK, psnr_db


def micro_vae(seed: int = 0):
    torch.manual_seed(seed)
    return build_vae("micro").eval()


def moving_waves(batch: int = 1, frames: int = 9, height: int = 64, width: int = 112) -> torch.Tensor:
    """A smooth video in [-1, 1] that moves a little each frame: something a VAE can learn quickly."""
    t = torch.arange(frames).view(1, 1, frames, 1, 1).float()
    y = torch.linspace(0, 1, height).view(1, 1, 1, height, 1)
    x = torch.linspace(0, 1, width).view(1, 1, 1, 1, width)
    phase = torch.arange(batch * 3).view(batch, 3, 1, 1, 1).float()
    return torch.sin(6 * x + 4 * y + 0.3 * t + phase) * torch.cos(3 * y - 0.2 * t + phase) * 0.9


@pytest.fixture(scope="module")
def vae():
    return micro_vae()


def test_micro_round_trip_shapes(vae) -> None:
    video = moving_waves()
    with torch.no_grad():
        latents = encode(vae, video)
        decoded = decode(vae, latents, 64, 112)
    # 16x spatial (64/16 = 4, 112/16 = 7), 1 + 8k frames -> 1 + k latent frames.
    assert compression(vae) == (8, 16)
    assert latents.shape == (1, 16, 2, 4, 7)
    assert latent_shape(vae, 9, 64, 112) == (16, 2, 4, 7)
    assert decoded.shape == video.shape
    assert decoded.min() >= -1 and decoded.max() <= 1


def test_sizes_not_a_multiple_of_the_compression_are_padded_and_cropped_back(vae) -> None:
    video = moving_waves(height=72, width=100)
    with torch.no_grad():
        latents = encode(vae, video)
        decoded = decode(vae, latents, 72, 100)
    assert latents.shape[-2:] == (5, 7) == latent_shape(vae, 9, 72, 100)[-2:]
    assert decoded.shape == video.shape


def test_frame_counts_other_than_1_plus_8k_are_refused(vae) -> None:
    with pytest.raises(ValueError, match=r"1 \+ 8k"):
        encode(vae, moving_waves(frames=8))
    with pytest.raises(ValueError, match=r"1 \+ 8k"):
        latent_shape(vae, 10, 64, 112)
    assert latent_shape(vae, 1, 64, 112)[1] == 1
    assert latent_shape(vae, 17, 64, 112)[1] == 3


def test_decode_refuses_latents_of_the_wrong_size(vae) -> None:
    latents = torch.zeros(1, 16, 2, 4, 7)
    with pytest.raises(ValueError, match="cannot decode to 96x112"):
        decode(vae, latents, 96, 112)


def test_first_frame_latent_is_the_first_latent_frame_of_the_video(vae) -> None:
    video = moving_waves(batch=2)
    later_changed = video.clone()
    later_changed[:, :, 1:] = -later_changed[:, :, 1:]
    with torch.no_grad():
        first = encode_first_frame(vae, video)
        whole = encode(vae, video)
        whole_changed = encode(vae, later_changed)
    assert first.shape == (2, 16, 1, 4, 7)
    # The encoder is causal, so these are the same numbers; convolutions over 1 vs 9 frames take different
    # blocking paths, so they agree to float rounding (~1e-6), not bit for bit.
    torch.testing.assert_close(first, whole[:, :, :1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(whole_changed[:, :, :1], whole[:, :, :1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(whole_changed[:, :, 1:], whole[:, :, 1:], atol=1e-3)


def test_uint8_frames_convert_losslessly_and_encode_like_floats(vae) -> None:
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 9, 64, 112, 3), dtype=np.uint8)
    video = to_model_range(frames)
    assert video.shape == (2, 3, 9, 64, 112) and video.min() >= -1 and video.max() <= 1
    np.testing.assert_array_equal(to_uint8(video), frames)
    with torch.no_grad():
        from_uint8 = encode(vae, torch.from_numpy(frames).permute(0, 4, 1, 2, 3))
        from_float = encode(vae, video)
    torch.testing.assert_close(from_uint8, from_float)
    with pytest.raises(ValueError, match=r"\(B, T, H, W, 3\)"):
        to_model_range(frames[0])


def test_posterior_samples_are_reproducible_with_a_generator(vae) -> None:
    video = moving_waves()
    with torch.no_grad():
        a = encode(vae, video, sample=True, generator=torch.Generator().manual_seed(3))
        b = encode(vae, video, sample=True, generator=torch.Generator().manual_seed(3))
        mean = encode(vae, video)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, mean)


def test_the_temporal_term_weighs_the_error_of_frame_to_frame_changes() -> None:
    vae = micro_vae().train()
    video = moving_waves(batch=2)

    def loss_with(weight: float) -> tuple[float, dict[str, float]]:
        loss, parts = vae_loss(vae, video, 1e-4, torch.Generator().manual_seed(0), temporal_weight=weight)
        return loss.item(), parts

    plain, parts = loss_with(0.0)
    weighted, _ = loss_with(2.0)
    assert parts["temporal"] > 0  # the untrained decoder does not move as the video does
    assert weighted == pytest.approx(plain + 2.0 * parts["temporal"], rel=1e-5)


def test_vae_loss_backpropagates_and_a_few_steps_reduce_the_reconstruction_error() -> None:
    vae = micro_vae().train()
    video = moving_waves(batch=2)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        before = psnr_db(decode(vae.eval(), encode(vae, video), 64, 112), video, MODEL_RANGE_PEAK)
    vae.train()
    history = []
    for _ in range(30):
        loss, parts = vae_loss(vae, video, kl_weight=1e-4, generator=generator)
        assert math.isfinite(loss.item()) and set(parts) == {"reconstruction", "temporal", "kl"}
        optimizer.zero_grad()
        loss.backward()
        # The deep encoder's and decoder's output layers start at zero, beside the linear path; they get
        # gradient from the first step, the layers below them from the second.
        for layer in (vae.ltx.encoder.conv_out.conv, vae.ltx.decoder.conv_out.conv, vae.patch_encoder):
            assert layer.weight.grad.abs().sum() > 0
        optimizer.step()
        history.append(parts["reconstruction"])
    assert vae.ltx.encoder.conv_in.conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        after = psnr_db(decode(vae.eval(), encode(vae, video), 64, 112), video, MODEL_RANGE_PEAK)
    assert np.mean(history[-5:]) < 0.7 * np.mean(history[:5])
    assert after > before + 2


def test_latent_stats_normalize_to_zero_mean_unit_std_and_back() -> None:
    generator = torch.Generator().manual_seed(0)
    scale = torch.tensor([0.5, 2.0, 10.0]).view(1, 3, 1, 1, 1)
    shift = torch.tensor([-1.0, 0.0, 3.0]).view(1, 3, 1, 1, 1)
    latents = torch.randn(8, 3, 2, 4, 7, generator=generator) * scale + shift
    stats = latent_stats(latents)
    assert len(stats["mean"]) == len(stats["std"]) == 3
    normalized = normalize(latents, stats)
    torch.testing.assert_close(normalized.mean(dim=(0, 2, 3, 4)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized.std(dim=(0, 2, 3, 4)), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(denormalize(normalized, stats), latents, atol=1e-5, rtol=1e-5)


def test_shared_latent_scale_keeps_the_channels_relative_sizes() -> None:
    scale = torch.tensor([1.0, 2.0, 8.0]).view(1, 3, 1, 1, 1)
    latents = torch.randn(8, 3, 2, 4, 7, generator=torch.Generator().manual_seed(0)) * scale + 1.0
    stats = latent_stats(latents, scale="shared")
    assert len(set(stats["std"])) == 1
    normalized = normalize(latents, stats)
    spread = normalized.std(dim=(0, 2, 3, 4))
    torch.testing.assert_close(spread / spread[0], torch.tensor([1.0, 2.0, 8.0]), atol=0.15, rtol=0.05)
    assert normalized.pow(2).mean() == pytest.approx(1.0, abs=0.02)  # unit variance over all channels
    torch.testing.assert_close(denormalize(normalized, stats), latents, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="latent scale 'global'"):
        latent_stats(latents, scale="global")


def test_missing_pretrained_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "ltx-video-vae"
    with pytest.raises(FileNotFoundError, match="ltx-video-vae") as error:
        load_pretrained_vae(missing)
    assert "config.json" in str(error.value)


@pytest.mark.parametrize("layout", ["vae_folder", "pipeline_folder"])
def test_saved_vae_loads_back_with_the_same_outputs(vae, tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "model"
    vae.save_pretrained(folder / "vae" if layout == "pipeline_folder" else folder)
    loaded = load_pretrained_vae(str(folder))
    video = moving_waves()
    with torch.no_grad():
        torch.testing.assert_close(encode(loaded, video), encode(vae, video))
        latents = encode(vae, video)
        torch.testing.assert_close(decode(loaded, latents, 64, 112), decode(vae, latents, 64, 112))


def test_ltx_preset_is_the_real_32x_8x_128_channel_vae() -> None:
    with torch.device("meta"):
        ltx = build_vae("ltx")
    assert compression(ltx) == (8, 32)
    assert ltx.latent_channels == 128 and ltx.patch_encoder is None
    # docs/design.md: 17 frames of 720x1280 -> 128 x 3 x 23 x 40 (720 / 32 = 22.5 is padded to 23).
    assert latent_shape(ltx, 17, 720, 1280) == (128, 3, 23, 40)


def test_small_presets_share_the_denoiser_latent_format() -> None:
    for name, expected, channels, linear in (
        ("tiny", (2, 8), 16, False),
        ("tiny_linear", (2, 8), 32, True),
        ("micro", (8, 16), 16, True),
    ):
        assert VAE_PRESETS[name]["latent_channels"] == channels and VAE_PRESETS[name]["linear_path"] == linear
        with torch.device("meta"):
            assert compression(build_vae(name)) == expected
    # The tiny preset's VAE makes the latents the tiny denoiser preset is sized for.
    tiny = get_preset("tiny")
    with torch.device("meta"):
        vae = build_vae("tiny")
    shape = latent_shape(vae, tiny.video_frames, tiny.video_height, tiny.video_width)
    grid = tiny.latent_grid
    assert shape == (tiny.denoiser.latent_channels, grid.frames, grid.height, grid.width) == (16, 3, 8, 14)
    with pytest.raises(ValueError, match="unknown VAE preset 'huge'"):
        build_vae("huge")


def test_the_linear_path_starts_the_vae_at_the_pca_code_of_its_clips() -> None:
    video = moving_waves(batch=4)
    frames = to_uint8(video)
    torch.manual_seed(0)
    fitted, unfitted = build_vae("micro", fit_clips=frames).eval(), micro_vae().eval()
    with torch.no_grad():
        latents = encode(fitted, video)
        # The deep encoder and decoder start at zero: the VAE is its linear path, a projection and its
        # transpose, so decoding the PCA coefficients and encoding the result again changes nothing.
        # (Up to frame 0, which the encoder sees 8 times and the decoder makes once.)
        again = encode(fitted, decode(fitted, latents, 64, 112))
        torch.testing.assert_close(again, latents, atol=1e-2, rtol=0)
        assert psnr_db(decode(fitted, latents, 64, 112), video, MODEL_RANGE_PEAK) > 30
        assert psnr_db(decode(unfitted, encode(unfitted, video), 64, 112), video, MODEL_RANGE_PEAK) < 15


def test_a_plain_ltx_vae_folder_loads_wrapped_and_computes_the_same(tmp_path: Path) -> None:
    from diffusers import AutoencoderKLLTXVideo

    torch.manual_seed(0)
    preset = {k: v for k, v in VAE_PRESETS["micro"].items() if k != "linear_path"}
    plain = AutoencoderKLLTXVideo(**preset).eval()
    plain.save_pretrained(tmp_path / "ltx")
    loaded = load_pretrained_vae(tmp_path / "ltx")
    assert loaded.patch_encoder is None
    video = moving_waves()
    with torch.no_grad():
        torch.testing.assert_close(encode(loaded, video), plain.encode(video).latent_dist.mode())
        latents = encode(loaded, video)
        torch.testing.assert_close(
            decode(loaded, latents, 64, 112), plain.decode(latents).sample.clamp(-1, 1)
        )
