"""Load a checkpoint of the public MobileI2V code (hustvl/MobileI2V, class `Mobiledit`) into our denoiser.

The two compute the same function (tests/reference/ checks it against the public code), so importing is a
renaming of keys:

    x_embedder.proj.*            -> patch_embed.*            (a 1x1 Conv2d weight becomes a Linear weight)
    t_embedder.mlp.* / t_block.* -> timestep_embedder.mlp.* / timestep_embedder.modulation.*
    flow_embedder.mlp.*          -> motion_embedder.mlp.*
    flow_block.*                 -> motion_embedder.modulation.*
    blocks.i.mlp.X.conv.*        -> blocks.i.ffn.X.*         (X: inverted_conv, depth_conv, point_conv)
    blocks.i.attn.*, blocks.i.scale_shift_table, final_layer.*  keep their names

Ignored on purpose: the text path (`y_embedder.*`, `attention_y_norm.*`), which no block reads, and the
fixed sin-cos buffers `pos_embed` and `pos_embed_temporal`, which the public forward never adds. Any other
key that has no place here, any of our weights the checkpoint lacks, and any shape that differs is an error
that names the key. Nothing is downloaded: the checkpoint is a local file.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from mobilei2v_pipeline.models.config import DenoiserConfig
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser

PUBLIC_HEAD_DIM = 72  # the public LiteLA's heads: hidden // 72 (mobiledit.py, SanaBlock_cross)
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
IGNORED_PREFIXES = ("y_embedder.", "attention_y_norm.")
IGNORED_KEYS = frozenset({"pos_embed", "pos_embed_temporal"})
RENAMES = (
    (re.compile(r"^x_embedder\.proj\."), "patch_embed."),
    (re.compile(r"^t_embedder\.mlp\."), "timestep_embedder.mlp."),
    (re.compile(r"^t_block\."), "timestep_embedder.modulation."),
    (re.compile(r"^flow_embedder\.mlp\."), "motion_embedder.mlp."),
    (re.compile(r"^flow_block\."), "motion_embedder.modulation."),
    (re.compile(r"^blocks\.(\d+)\.mlp\.(inverted_conv|depth_conv|point_conv)\.conv\."), r"blocks.\1.ffn.\2."),
)


class CheckpointImportError(ValueError):
    """A public checkpoint that does not fit the denoiser; the message names the keys."""


def checkpoint_file(path: str | Path) -> Path:
    """`path` itself, or the one checkpoint file (.pth, .pt, .bin, .safetensors) in the folder `path`."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no MobileI2V checkpoint at {path}: the path does not exist")
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    if len(found) != 1:
        names = ", ".join(p.name for p in found)
        what = f"{len(found)} checkpoint files ({names})" if found else "no checkpoint file"
        raise FileNotFoundError(
            f"{path} holds {what}; put exactly one public MobileI2V checkpoint "
            f"({', '.join(CHECKPOINT_SUFFIXES)}) there, or give the file itself"
        )
    return found[0]


def read_public_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The model weights of a public checkpoint file: its `state_dict` entry (what the public inference script
    loads) or the file itself when it is a bare state dict; a `module.` prefix (DDP) is dropped."""
    file = checkpoint_file(path)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        checkpoint = load_file(file)
    else:
        try:
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle errors have several types; all mean the same here
            raise CheckpointImportError(
                f"{file} could not be read as tensors only ({error}). If it also holds training state "
                "(optimizer, RNG), save its 'state_dict' alone from a Python session you trust and import "
                "that"
            ) from error
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointImportError(f"{file} is not a MobileI2V checkpoint: it holds no dict of tensors")
    return {key.removeprefix("module."): value for key, value in state_dict.items()}


def our_key(public_key: str) -> str | None:
    """Our name for a public key, or None for a key that is ignored on purpose."""
    if public_key in IGNORED_KEYS or public_key.startswith(IGNORED_PREFIXES):
        return None
    for pattern, replacement in RENAMES:
        if pattern.match(public_key):
            return pattern.sub(replacement, public_key)
    return public_key


def latent_channels_of(public_state_dict: dict[str, torch.Tensor]) -> int:
    if "x_embedder.proj.weight" not in public_state_dict:
        raise CheckpointImportError("not a MobileI2V checkpoint: it has no 'x_embedder.proj.weight'")
    return int(public_state_dict["x_embedder.proj.weight"].shape[1])


def public_architecture(public_state_dict: dict[str, torch.Tensor], base: DenoiserConfig) -> DenoiserConfig:
    """`base` with the shapes a public checkpoint shows: width, latent channels, depth, FFN ratio, which
    blocks are softmax (their qkv has a bias), and heads of 72 channels, the public linear attention's fixed
    head size. What no shape shows (RoPE, embedding sizes) stays `base`'s."""
    latent = latent_channels_of(public_state_dict)  # also checks that this is a MobileI2V checkpoint
    hidden = int(public_state_dict["x_embedder.proj.weight"].shape[0])
    blocks = sorted({int(key.split(".")[1]) for key in public_state_dict if key.startswith("blocks.")})
    ffn_key = "blocks.0.mlp.point_conv.conv.weight"
    if blocks != list(range(len(blocks))) or ffn_key not in public_state_dict:
        raise CheckpointImportError(
            "not a MobileI2V checkpoint: its blocks.i.* keys are missing or not numbered from 0"
        )
    ffn_hidden = public_state_dict[ffn_key].shape[1]
    return dataclasses.replace(
        base,
        latent_channels=latent,
        hidden_size=hidden,
        depth=len(blocks),
        num_heads=max(1, hidden // PUBLIC_HEAD_DIM),
        ffn_ratio=ffn_hidden / hidden,
        softmax_blocks=tuple(i for i in blocks if f"blocks.{i}.attn.qkv.bias" in public_state_dict),
        caption_embedder=False,
    )


def convert_public_state_dict(
    public_state_dict: dict[str, torch.Tensor], model: MobileI2VDenoiser
) -> dict[str, torch.Tensor]:
    """The public weights under our names and shapes, checked against `model`: every weight of ours present,
    nothing unknown, every shape equal."""
    expected = model.state_dict()
    converted, origin, unexpected = {}, {}, []
    for public_key, value in public_state_dict.items():
        key = our_key(public_key)
        if key is None:
            continue
        if key not in expected:
            unexpected.append(public_key)
            continue
        if key == "patch_embed.weight" and value.ndim == 4:  # Conv2d (C, L, 1, 1) -> Linear (C, L)
            value = value.flatten(1)
        converted[key], origin[key] = value, public_key
    problems = []
    if unexpected:
        problems.append(f"unexpected keys (no place in the denoiser): {', '.join(sorted(unexpected))}")
    missing = sorted(set(expected) - set(converted))
    if missing:
        problems.append(f"missing keys (weights of the denoiser the checkpoint lacks): {', '.join(missing)}")
    problems += [
        f"{origin[key]} has shape {tuple(value.shape)}, the denoiser's {key} {tuple(expected[key].shape)}"
        for key, value in converted.items()
        if value.shape != expected[key].shape
    ]
    if problems:
        config = model.config
        raise CheckpointImportError(
            f"the checkpoint does not fit the denoiser (hidden {config.hidden_size}, depth {config.depth}, "
            f"{config.num_heads} heads, softmax blocks {list(config.softmax_blocks)}): " + "; ".join(problems)
        )
    return {key: value.to(expected[key].dtype) for key, value in converted.items()}


def import_public_checkpoint(path: str | Path, config: DenoiserConfig) -> MobileI2VDenoiser:
    """Our denoiser with the weights of the public checkpoint at `path` (a file, or a folder holding one),
    in eval mode. `config` gives the architecture; its latent channels follow the checkpoint's, the
    unused text path is left out, and the inputs are the public code's (no first-frame residual)."""
    public = read_public_state_dict(path)
    config = dataclasses.replace(
        config, latent_channels=latent_channels_of(public), caption_embedder=False, first_frame_residual=False
    )
    model = MobileI2VDenoiser(config)
    model.load_state_dict(convert_public_state_dict(public, model))
    return model.eval()
