"""3D rotary position embedding (RoPE) for video tokens on a (frames, height, width) grid.

Each head's channels are split in three parts that rotate with the token's frame, row and column index, so
attention scores depend on the relative offset in time and space. Tokens are time-major: (t, h, w) order.
The tables depend only on the grid, so a mobile export can bake them in as constants.
"""

from __future__ import annotations

import torch

from mobilei2v_pipeline.models.config import LatentGrid


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channels of a head given to (time, height, width).

    Height and width get 2 * (head_dim // 6) each and time the rest (Wan's rule, which Sana-Video follows):
    72 -> (24, 24, 24), 32 -> (12, 10, 10). Every part is even because a rotation acts on pairs.
    """
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"3D RoPE needs an even head_dim >= 6, got {head_dim}")
    spatial = 2 * (head_dim // 6)
    return head_dim - 2 * spatial, spatial, spatial


def rope_tables(
    grid: LatentGrid, head_dim: int, theta: float = 10000.0, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (grid.tokens, head_dim) float32, rows in time-major (t, h, w) order.

    Rotate-half layout: channels i and i + head_dim / 2 form a rotated pair. The head_dim / 2 pair angles are
    the time part's, then the height part's, then the width part's; part p of width d rotates its i-th pair
    by position * theta^(-2i / d).
    """
    positions = torch.meshgrid(
        torch.arange(grid.frames), torch.arange(grid.height), torch.arange(grid.width), indexing="ij"
    )
    angles = []
    for position, dim in zip(positions, rope_split(head_dim), strict=True):
        inverse_frequency = theta ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles.append(position.reshape(-1, 1).double() * inverse_frequency)
    half = torch.cat(angles, dim=-1)  # (tokens, head_dim / 2); float64 keeps large angles exact
    full = torch.cat([half, half], dim=-1)
    return full.cos().float().to(device), full.sin().float().to(device)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, heads, N, head_dim) by the tables (N, head_dim), broadcast over batch and heads."""
    return x * cos + rotate_half(x) * sin
