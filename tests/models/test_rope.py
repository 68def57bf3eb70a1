"""3D RoPE: the split rule, the tables' layout, and the properties attention relies on."""

from __future__ import annotations

import pytest
import torch

from mobilei2v_pipeline.models.config import LatentGrid
from mobilei2v_pipeline.models.rope import apply_rope, rope_split, rope_tables, rotate_half_blocks


@pytest.mark.parametrize(("head_dim", "split"), [(72, (24, 24, 24)), (36, (12, 12, 12)), (6, (2, 2, 2))])
def test_split_gives_equal_even_thirds(head_dim: int, split: tuple[int, int, int]) -> None:
    assert rope_split(head_dim) == split
    assert sum(split) == head_dim and all(part % 2 == 0 for part in split)


@pytest.mark.parametrize("head_dim", [5, 4, 31, 32, 16, 0])
def test_split_rejects_heads_that_cannot_be_split(head_dim: int) -> None:
    with pytest.raises(ValueError, match="head_dim"):
        rope_split(head_dim)


def test_tables_are_time_major_with_one_row_per_token() -> None:
    grid = LatentGrid(3, 23, 40)  # the paper's odd grid
    cos, sin = rope_tables(grid, head_dim=72)
    assert cos.shape == sin.shape == (2760, 72)
    # The first pair of each 24-channel block turns at frequency 1, i.e. by the token's t, h and w index.
    t, h, w = (p.flatten().float() for p in torch.meshgrid(*map(torch.arange, (3, 23, 40)), indexing="ij"))
    torch.testing.assert_close(sin[:, 0], torch.sin(t))
    torch.testing.assert_close(sin[:, 24], torch.sin(h))
    torch.testing.assert_close(sin[:, 48], torch.sin(w))
    # Rotate-half inside each block: channel i and i + 12 of a block share an angle.
    for start in (0, 24, 48):
        torch.testing.assert_close(cos[:, start : start + 12], cos[:, start + 12 : start + 24])


def test_position_scale_divides_each_axis() -> None:
    grid = LatentGrid(3, 23, 40)
    _, sin = rope_tables(grid, head_dim=72, position_scale=(1.0, 1.4375, 2.5))
    t, h, w = (p.flatten().float() for p in torch.meshgrid(*map(torch.arange, (3, 23, 40)), indexing="ij"))
    torch.testing.assert_close(sin[:, 0], torch.sin(t))
    torch.testing.assert_close(sin[:, 24], torch.sin(h / 1.4375))
    torch.testing.assert_close(sin[:, 48], torch.sin(w / 2.5))


def test_rotate_half_acts_inside_each_block() -> None:
    x = torch.arange(1.0, 13.0)  # three blocks of four: (1 2 3 4) (5 6 7 8) (9 10 11 12)
    expected = torch.tensor([-3.0, -4, 1, 2, -7, -8, 5, 6, -11, -12, 9, 10])
    torch.testing.assert_close(rotate_half_blocks(x), expected)
    torch.testing.assert_close(rotate_half_blocks(x[None, :, None], dim=1), expected[None, :, None])


def test_position_zero_is_the_identity_and_rotations_keep_norms() -> None:
    cos, sin = rope_tables(LatentGrid(2, 3, 5), head_dim=36)
    x = torch.randn(2, 4, 30, 36)
    rotated = apply_rope(x, cos, sin)
    torch.testing.assert_close(rotated[:, :, 0], x[:, :, 0])
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    assert not torch.allclose(rotated[:, :, 1:], x[:, :, 1:])


def test_scores_depend_only_on_the_3d_offset() -> None:
    grid = LatentGrid(4, 6, 7)
    cos, sin = rope_tables(grid, head_dim=72)
    q, k = torch.randn(72), torch.randn(72)

    def score(query_at: tuple[int, int, int], key_at: tuple[int, int, int]) -> torch.Tensor:
        def index(t: int, h: int, w: int) -> int:
            return (t * grid.height + h) * grid.width + w

        i, j = index(*query_at), index(*key_at)
        return apply_rope(q, cos[i], sin[i]) @ apply_rope(k, cos[j], sin[j])

    offset = score((0, 0, 0), (1, 2, 3))
    torch.testing.assert_close(score((2, 3, 1), (3, 5, 4)), offset, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(score((1, 1, 2), (2, 3, 5)), offset, rtol=1e-5, atol=1e-5)
    # A different offset along any one axis changes the score.
    for other in [(2, 2, 3), (1, 3, 3), (1, 2, 4)]:
        assert not torch.allclose(score((0, 0, 0), other), offset, atol=1e-3)
