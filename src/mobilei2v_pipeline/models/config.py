"""Model presets as data: the denoiser's shape, the latent grid it sees and the video that grid comes from."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The rule behind the public code's RoPE scale: latent positions are scaled to a grid of this many cells in
# height and width, whatever the latent's size (its (1, 1.4375, 2.5) is 23 / 16 and 40 / 16).
ROPE_BASE_GRID = 16


@dataclass(frozen=True)
class DenoiserConfig:
    """The MobileI2V denoiser. Defaults are the paper's 270M model (docs/design.md, section 3)."""

    latent_channels: int = 128
    hidden_size: int = 1152
    depth: int = 16
    num_heads: int = 16
    ffn_ratio: float = 2.5
    softmax_blocks: tuple[int, ...] = (7, 15)  # 0-based: the paper's blocks 8 and 16; the rest are linear
    frequency_embedding_size: int = 256
    rope_theta: float = 10000.0
    # 3D RoPE divides (frame, row, column) positions by these. The public code fixes them at (1, 1.4375, 2.5),
    # its 23 x 40 latent scaled to a 16 x 16 base grid, whatever grid it runs on; None applies that rule to
    # the grid at hand: (1, H / 16, W / 16).
    rope_interpolation_scale: tuple[float, float, float] | None = (1.0, 1.4375, 2.5)
    # The public code keeps Sana's text path (a caption projection and its RMSNorm) although no block reads
    # it; off by default, counted only to reconcile our parameter count with the public one (model_card.py).
    caption_embedder: bool = False
    # Inferred, not read: a 896-wide text encoder makes the projection 2.36M, the gap between the public
    # code's 267.22M and the 264.86M without it.
    caption_channels: int = 896
    # Off in the public code. On, the network sees each generated frame as its difference from the image
    # latent (frame 0) and predicts that difference's velocity: it learns what changes, and every token
    # holds its own cell of the image, which mostly-linear attention cannot fetch from frame 0 precisely
    # (denoiser.py, docs/denoiser.md). Inputs and output stay latents and their velocity.
    first_frame_residual: bool = False

    def __post_init__(self) -> None:
        # Parameters files give lists; a tuple keeps the frozen config hashable.
        object.__setattr__(self, "softmax_blocks", tuple(self.softmax_blocks))
        if self.rope_interpolation_scale is not None:
            scale = tuple(float(s) for s in self.rope_interpolation_scale)
            if len(scale) != 3 or min(scale) <= 0:
                raise ValueError(
                    "DenoiserConfig.rope_interpolation_scale must be three positive (time, height, width) "
                    f"divisors or null, got {self.rope_interpolation_scale}"
                )
            object.__setattr__(self, "rope_interpolation_scale", scale)
        positive = ("latent_channels", "hidden_size", "depth", "num_heads", "frequency_embedding_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"DenoiserConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"DenoiserConfig: hidden_size {self.hidden_size} is not divisible by num_heads "
                f"{self.num_heads}; pick heads that divide it"
            )
        if self.head_dim % 6:
            raise ValueError(
                f"DenoiserConfig: head_dim {self.head_dim} (hidden_size / num_heads) must be a multiple of 6 "
                "so that 3D RoPE can give time, height and width an equal, even share each (72 in the paper)"
            )
        if self.frequency_embedding_size % 2:
            raise ValueError(
                f"DenoiserConfig.frequency_embedding_size must be even (cos and sin halves), "
                f"got {self.frequency_embedding_size}"
            )
        if self.ffn_hidden < 1:
            raise ValueError(f"DenoiserConfig.ffn_ratio {self.ffn_ratio} gives an empty FFN")
        bad = [i for i in self.softmax_blocks if not 0 <= i < self.depth]
        if bad or len(set(self.softmax_blocks)) != len(self.softmax_blocks):
            raise ValueError(
                f"DenoiserConfig.softmax_blocks {self.softmax_blocks} must be distinct 0-based block indices "
                f"in [0, {self.depth})"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def ffn_hidden(self) -> int:
        return int(self.hidden_size * self.ffn_ratio)

    def rope_position_scale(self, grid: LatentGrid) -> tuple[float, float, float]:
        """The (time, height, width) divisors of RoPE positions on `grid`."""
        if self.rope_interpolation_scale is not None:
            return self.rope_interpolation_scale
        return 1.0, grid.height / ROPE_BASE_GRID, grid.width / ROPE_BASE_GRID

    @property
    def block_pattern(self) -> str:
        """One letter per block: S for softmax attention, L for linear attention."""
        return "".join("S" if i in self.softmax_blocks else "L" for i in range(self.depth))


@dataclass(frozen=True)
class LatentGrid:
    """The latent video's frames x height x width; one token per cell (patch size 1), time-major."""

    frames: int
    height: int
    width: int

    @property
    def tokens(self) -> int:
        return self.frames * self.height * self.width


@dataclass(frozen=True)
class Preset:
    """A denoiser plus the video it is made for and the autoencoder compression between them."""

    name: str
    denoiser: DenoiserConfig
    video_frames: int
    video_height: int
    video_width: int
    temporal_compression: int
    spatial_compression: int

    def __post_init__(self) -> None:
        if self.video_frames < 1 or (self.video_frames - 1) % self.temporal_compression:
            raise ValueError(
                f"preset {self.name!r}: video_frames {self.video_frames} must be 1 + k * "
                f"{self.temporal_compression} (the autoencoder encodes frame 0 on its own)"
            )

    @property
    def latent_grid(self) -> LatentGrid:
        # The first frame is its own latent frame; height and width are padded up to whole latent cells.
        return LatentGrid(
            frames=1 + (self.video_frames - 1) // self.temporal_compression,
            height=math.ceil(self.video_height / self.spatial_compression),
            width=math.ceil(self.video_width / self.spatial_compression),
        )


PRESETS: dict[str, Preset] = {
    # The paper: 17 x 720 x 1280 through the LTX-Video VAE (8x temporal, 32x spatial, 128 channels)
    # -> latent 3 x 23 x 40 = 2760 tokens.
    "paper": Preset(
        name="paper",
        denoiser=DenoiserConfig(),
        video_frames=17,
        video_height=720,
        video_width=1280,
        temporal_compression=8,
        spatial_compression=32,
    ),
    # The default demo, sized to train on 2 CPU cores in minutes: 5 x 64 x 112 -> latent 3 x 8 x 14 = 336
    # tokens, the same 2-of-N softmax pattern at the end of each half; RoPE positions by the base-grid rule.
    "tiny": Preset(
        name="tiny",
        denoiser=DenoiserConfig(
            latent_channels=16,
            hidden_size=120,
            depth=6,
            num_heads=4,
            ffn_ratio=2.5,
            softmax_blocks=(2, 5),
            rope_interpolation_scale=None,
            first_frame_residual=True,
        ),
        video_frames=5,
        video_height=64,
        video_width=112,
        temporal_compression=2,
        spatial_compression=8,
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
