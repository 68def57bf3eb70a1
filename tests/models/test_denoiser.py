"""The denoiser: shapes on any grid, per-frame timesteps, motion conditioning, gradients, checkpointing,
and the presets and config checks it is built from."""

from __future__ import annotations

import pytest
import torch

from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid, get_preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser

SMALL = DenoiserConfig(latent_channels=4, hidden_size=36, depth=3, num_heads=2, softmax_blocks=(1,))


def small_model(seed: int = 0, **overrides: object) -> MobileI2VDenoiser:
    """A small denoiser whose output layer is not zero, so that its output depends on its inputs."""
    torch.manual_seed(seed)
    model = MobileI2VDenoiser(DenoiserConfig(**{**SMALL.__dict__, **overrides}))
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.5)
    return model


def inputs(grid: LatentGrid, batch: int = 2, channels: int = 4) -> tuple[torch.Tensor, ...]:
    latents = torch.randn(batch, channels, grid.frames, grid.height, grid.width)
    timesteps = torch.rand(batch, grid.frames)
    timesteps[:, 0] = 0  # I2V: frame 0 is the clean image latent
    return latents, timesteps, torch.full((batch,), 2.0)


@pytest.mark.parametrize("grid", [LatentGrid(1, 1, 1), LatentGrid(2, 3, 5), LatentGrid(3, 23, 40)], ids=str)
def test_output_has_the_shape_of_the_input_on_any_grid(grid: LatentGrid) -> None:
    latents, timesteps, motion = inputs(grid)
    with torch.no_grad():
        out = small_model()(latents, timesteps, motion)
    assert out.shape == latents.shape
    assert torch.isfinite(out).all()


def test_untrained_model_predicts_zero_velocity() -> None:
    # DiT convention: the output layer starts at zero.
    model = MobileI2VDenoiser(SMALL)
    latents, timesteps, motion = inputs(LatentGrid(2, 3, 4))
    assert torch.equal(model(latents, timesteps, motion), torch.zeros_like(latents))


def test_first_frame_residual_is_the_plain_network_on_differences_from_the_image() -> None:
    # The same weights with and without the residual: the network sees each generated frame as
    # x_t - (1 - t) x_image and its output, minus x_image, is the velocity of the latents.
    plain, residual = small_model(), small_model(first_frame_residual=True)
    latents, timesteps, motion = inputs(LatentGrid(3, 3, 4))
    image = latents[:, :, :1]
    keep = (1 - timesteps[:, 1:])[:, None, :, None, None]
    with torch.no_grad():
        expected = plain(torch.cat([image, latents[:, :, 1:] - keep * image], dim=2), timesteps, motion)
        expected[:, :, 1:] -= image
        assert torch.allclose(residual(latents, timesteps, motion), expected, atol=1e-6)
        one_t = residual(latents, timesteps[:, 1], motion)  # one t per sample applies to frame 0 too
    assert one_t.shape == latents.shape


def test_motion_score_changes_the_prediction() -> None:
    model = small_model()
    latents, timesteps, _ = inputs(LatentGrid(2, 3, 4))
    with torch.no_grad():
        slow = model(latents, timesteps, torch.tensor([0.5, 0.5]))
        again = model(latents, timesteps, torch.tensor([0.5, 0.5]))
        fast = model(latents, timesteps, torch.tensor([0.5, 6.0]))
    assert torch.equal(slow, again)
    assert torch.equal(slow[0], fast[0])  # motion is per sample
    assert (slow[1] - fast[1]).abs().max() > 1e-3


def test_timesteps_modulate_each_frame_separately() -> None:
    model = small_model()
    grid = LatentGrid(3, 3, 4)
    latents, timesteps, motion = inputs(grid)
    later = timesteps.clone()
    later[:, 1] = 0.9 if timesteps[0, 1] < 0.5 else 0.1
    with torch.no_grad():
        mixed = model(latents, timesteps, motion), model(latents, later, motion)
        # Silence attention, the only path between frames: then frame 1's timestep reaches frame 1 only.
        for block in model.blocks:
            torch.nn.init.zeros_(block.attn.proj.weight)
            torch.nn.init.zeros_(block.attn.proj.bias)
        separate = model(latents, timesteps, motion), model(latents, later, motion)
    changed = [(a - b).abs().amax(dim=(0, 1, 3, 4)) for a, b in (mixed, separate)]
    assert (changed[0] > 1e-4).all()  # through attention, every frame sees frame 1's timestep
    assert changed[1][1] > 1e-4
    assert changed[1][0] == 0 and changed[1][2] == 0


def test_one_timestep_per_sample_means_the_same_on_every_frame() -> None:
    model = small_model()
    latents, _, motion = inputs(LatentGrid(3, 2, 2))
    t = torch.tensor([0.3, 0.8])
    with torch.no_grad():
        torch.testing.assert_close(model(latents, t, motion), model(latents, t[:, None].expand(2, 3), motion))


def test_gradients_reach_every_parameter() -> None:
    model = small_model()
    latents, timesteps, motion = inputs(LatentGrid(2, 3, 4))
    model(latents, timesteps, motion).square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_gradient_checkpointing_gives_the_same_output_and_gradients() -> None:
    latents, timesteps, motion = inputs(LatentGrid(2, 3, 4))
    results, block_calls = [], []
    for checkpointing in (False, True):
        model = small_model(seed=1)
        model.gradient_checkpointing = checkpointing
        block, calls = model.blocks[0], []

        def counted(*args: object, forward=block.forward, calls=calls) -> torch.Tensor:
            calls.append(1)
            return forward(*args)

        block.forward = counted
        out = model(latents, timesteps, motion)
        out.square().mean().backward()
        results.append((out.detach(), [p.grad for p in model.parameters()]))
        block_calls.append(len(calls))
    assert block_calls == [1, 2]  # with checkpointing the backward pass runs each block again
    torch.testing.assert_close(results[0][0], results[1][0])
    for plain, recomputed in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(plain, recomputed)


def test_text_path_is_built_but_never_used() -> None:
    model = small_model(caption_embedder=True)
    latents, timesteps, motion = inputs(LatentGrid(2, 2, 2))
    model(latents, timesteps, motion).sum().backward()
    text_path = [*model.caption_embedder.parameters(), *model.caption_norm.parameters()]
    assert text_path and all(p.grad is None for p in text_path)


def test_rope_positions_follow_the_paper_scale_or_the_base_grid_rule() -> None:
    paper = get_preset("paper").denoiser
    assert paper.rope_position_scale(LatentGrid(3, 23, 40)) == (1.0, 1.4375, 2.5)
    assert paper.rope_position_scale(LatentGrid(3, 22, 40)) == (1.0, 1.4375, 2.5)  # fixed, as upstream
    tiny = get_preset("tiny").denoiser
    assert tiny.rope_position_scale(LatentGrid(3, 8, 14)) == (1.0, 0.5, 0.875)
    # The rule gives the paper's figures on the paper's grid.
    assert tiny.rope_position_scale(LatentGrid(3, 23, 40)) == (1.0, 1.4375, 2.5)


@pytest.mark.parametrize(
    ("latents", "timesteps", "motion", "message"),
    [
        ((2, 5, 2, 3, 3), (2, 2), (2,), "latents"),
        ((2, 4, 2, 3), (2, 2), (2,), "latents"),
        ((2, 4, 2, 3, 3), (2, 3), (2,), "timesteps"),
        ((2, 4, 2, 3, 3), (2, 2), (2, 1), "motion"),
    ],
)
def test_wrong_shapes_are_named(latents: tuple, timesteps: tuple, motion: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_model()(torch.randn(latents), torch.rand(timesteps), torch.rand(motion))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": 30, "num_heads": 4}, "not divisible"),
        ({"hidden_size": 32, "num_heads": 8}, "head_dim 4"),
        ({"hidden_size": 32, "num_heads": 2}, "multiple of 6"),
        ({"rope_interpolation_scale": (1.0, 0.0, 2.5)}, "rope_interpolation_scale"),
        ({"rope_interpolation_scale": (1.0, 2.5)}, "rope_interpolation_scale"),
        ({"depth": 3, "softmax_blocks": (3,)}, "softmax_blocks"),
        ({"softmax_blocks": (1, 1)}, "softmax_blocks"),
        ({"depth": 0, "softmax_blocks": ()}, "depth"),
    ],
)
def test_bad_configs_are_rejected_with_the_reason(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DenoiserConfig(**{**SMALL.__dict__, **overrides})


def test_presets_give_the_latent_grids_of_design() -> None:
    assert get_preset("paper").latent_grid == LatentGrid(3, 23, 40)
    assert get_preset("paper").latent_grid.tokens == 2760
    tiny = get_preset("tiny")
    assert tiny.latent_grid == LatentGrid(3, 8, 14) and tiny.latent_grid.tokens == 336
    assert tiny.denoiser.head_dim == 30 and tiny.denoiser.block_pattern == "LLSLLS"
    with pytest.raises(KeyError, match="paper, tiny"):
        get_preset("huge")


def test_tiny_preset_trains_a_step() -> None:
    preset = get_preset("tiny")
    grid = preset.latent_grid
    model = MobileI2VDenoiser(preset.denoiser)
    latents, timesteps, motion = inputs(grid, channels=preset.denoiser.latent_channels)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = (model(latents, timesteps, motion) - latents).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
