"""3D rotary position embedding (RoPE) for video tokens on a (frames, height, width) grid, as the public
MobileI2V code computes it (`diffusion/model/nets/rope.py`).

Each head's channels are split in three equal blocks that rotate with the token's frame, row and column
position, so attention scores depend on the relative offset in time and space. Inside each block, channel i
pairs with channel i + block / 2 (rotate-half within the block). Positions are divided by a per-axis scale
(`DenoiserConfig.rope_position_scale`). Tokens are time-major: (t, h, w) order. The tables depend only on
the grid, so a mobile export can bake them in as constants.
"""

from __future__ import annotations

import torch

from mobilei2v_pipeline.models.config import LatentGrid


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channels of a head given to (time, height, width): a third each, 72 -> (24, 24, 24). Each third must
    be even because a rotation acts on pairs, so head_dim must be a multiple of 6."""
    if head_dim % 6 or head_dim < 6:
        raise ValueError(f"3D RoPE needs a head_dim that is a multiple of 6, got {head_dim}")
    return (head_dim // 3,) * 3


def rope_tables(
    grid: LatentGrid,
    head_dim: int,
    theta: float = 10000.0,
    position_scale: tuple[float, float, float] = (1.0, 1.0, 1.0),
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (grid.tokens, head_dim) float32, rows in time-major (t, h, w) order.

    Block b (time, height, width) of width D rotates its i-th pair, channels (i, i + D / 2), by the angle
    (position_b / position_scale_b) * theta^(-2i / D).
    """
    positions = torch.meshgrid(
        torch.arange(grid.frames), torch.arange(grid.height), torch.arange(grid.width), indexing="ij"
    )
    blocks = []
    for position, scale, dim in zip(positions, position_scale, rope_split(head_dim), strict=True):
        inverse_frequency = theta ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles = (position.reshape(-1, 1).double() / scale) * inverse_frequency  # (tokens, dim / 2)
        blocks.append(torch.cat([angles, angles], dim=-1))
    full = torch.cat(blocks, dim=-1)  # (tokens, head_dim); float64 keeps large angles exact
    return full.cos().float().to(device), full.sin().float().to(device)


def rotate_half_blocks(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Rotate-half inside each of the three (time, height, width) channel blocks along `dim`: a block
    (a, b) becomes (-b, a). Slices (not a split, which mobile delegates lack) and one concatenation, so
    a mobile graph needs no gather."""
    half = x.shape[dim] // 6
    parts = []
    for start in range(0, 6 * half, 2 * half):
        first, second = x.narrow(dim, start, half), x.narrow(dim, start + half, half)
        parts += [-second, first]
    return torch.cat(parts, dim=dim)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, heads, N, head_dim) by the tables (N, head_dim), broadcast over batch and heads."""
    return x * cos + rotate_half_blocks(x) * sin
