"""Our denoiser computes the public MobileI2V function: the public code's weights, imported through the
checkpoint importer, give its output (fixture made by tests/reference/make_upstream_reference.py from
hustvl/MobileI2V at a small width on the paper's 3 x 23 x 40 grid)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reference.make_upstream_reference import load_fixture

from mobilei2v_pipeline.models.checkpoint_import import (
    CheckpointImportError,
    convert_public_state_dict,
    import_public_checkpoint,
)
from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid, get_preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser

GRID = LatentGrid(3, 23, 40)


@pytest.fixture(scope="module")
def reference() -> dict:
    return load_fixture()


def small_config(reference: dict) -> DenoiserConfig:
    """The paper preset's architecture at the fixture's width (its RoPE scale is the paper's)."""
    size = reference["size"]
    return DenoiserConfig(
        latent_channels=size["in_channels"],
        hidden_size=size["hidden_size"],
        num_heads=size["num_heads"],
        ffn_ratio=size["mlp_ratio"],
    )


def our_inputs(inputs: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The public call in our convention: flow time t = timestep / 1000 per latent frame, frame 0 clean."""
    timesteps = (inputs["timestep"] / 1000).unsqueeze(1).repeat(1, GRID.frames)
    timesteps[:, 0] = 0.0
    return inputs["latents"], timesteps, inputs["flow_score"]


@pytest.fixture(scope="module")
def imported(reference: dict, tmp_path_factory: pytest.TempPathFactory) -> MobileI2VDenoiser:
    """The fixture's weights as a public checkpoint file ({'state_dict': ...}, as the public code saves
    them), imported."""
    path = tmp_path_factory.mktemp("checkpoint") / "mobilei2v.pth"
    torch.save({"state_dict": reference["state_dict"], "epoch": 3}, path)
    return import_public_checkpoint(path.parent, small_config(reference))


def test_the_fixture_is_a_real_output(reference: dict) -> None:
    assert reference["output"].shape == (2, 8, GRID.frames, GRID.height, GRID.width)
    assert reference["output"].abs().max() > 1.0  # random weights, not an all-zero output layer
    assert any(key.startswith("y_embedder.") for key in reference["state_dict"])  # the text path is there


@torch.no_grad()
def test_training_form_matches_the_public_code(reference: dict, imported: MobileI2VDenoiser) -> None:
    out = imported(*our_inputs(reference["inputs"]))
    assert (out - reference["output"]).abs().max() <= 1e-4


@torch.no_grad()
def test_mobile_form_matches_the_public_code(reference: dict, imported: MobileI2VDenoiser) -> None:
    out = MobileDenoiser(imported, GRID)(*our_inputs(reference["inputs"]))
    assert (out - reference["output"]).abs().max() <= 1e-4


@torch.no_grad()
def test_the_first_frame_is_conditioned_like_the_public_code(reference: dict, imported: MobileI2VDenoiser):
    """The public code clamps frame 0's timestep to 0 through its cond_mask; a model fed t on every frame
    instead gives another output, so the match above is not an accident of the conditioning."""
    latents, timesteps, motion = our_inputs(reference["inputs"])
    wrong = imported(latents, timesteps[:, 1], motion)  # one t on every frame, frame 0 included
    assert (wrong - reference["output"]).abs().max() > 1e-2


def test_unknown_missing_and_misshapen_keys_are_named(reference: dict) -> None:
    model = MobileI2VDenoiser(small_config(reference))
    public = dict(reference["state_dict"])
    public["blocks.3.attn.extra.weight"] = torch.zeros(1)
    del public["blocks.5.mlp.point_conv.conv.weight"]
    public["final_layer.linear.bias"] = torch.zeros(3)
    with pytest.raises(CheckpointImportError) as error:
        convert_public_state_dict(public, model)
    message = str(error.value)
    assert "unexpected keys" in message and "blocks.3.attn.extra.weight" in message
    assert "missing keys" in message and "blocks.5.ffn.point_conv.weight" in message
    assert "final_layer.linear.bias has shape (3,)" in message


def test_a_checkpoint_of_another_width_is_refused(reference: dict, tmp_path: Path) -> None:
    path = tmp_path / "mobilei2v.pth"
    torch.save(reference["state_dict"], path)  # a bare state dict is accepted too
    with pytest.raises(CheckpointImportError, match=r"does not fit the denoiser \(hidden 1152"):
        import_public_checkpoint(path, get_preset("paper").denoiser)


@pytest.mark.parametrize("files", [[], ["a.pth", "b.pth"]])
def test_a_folder_must_hold_exactly_one_checkpoint(tmp_path: Path, files: list[str]) -> None:
    for name in files:
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        import_public_checkpoint(tmp_path, get_preset("paper").denoiser)
