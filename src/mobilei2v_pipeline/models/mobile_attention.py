"""Export-time forms of the two attentions for mobile NPUs (DESIGN.md section 3, "Mobile attention").

Same weights, same results, different shapes of work: activations stay 4D and channels-first, (B, C, 1, S), so
every projection is a 1x1 convolution; heads run one after another on channel slices instead of one batched
reshape; the RoPE tables are constants of the static export grid, laid out (d, 1, S) so rotation is two
multiplies and a signed channel swap inside each (time, height, width) block, with no gather; the products
are einsums; there is no fused SDPA op.

`use_mobile_attention` swaps them into a trained denoiser for one grid; each mobile module keeps a reference
to the module it replaces, so the parameters are shared, not copied.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobilei2v_pipeline.models.attention import LinearAttention, SoftmaxAttention
from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid
from mobilei2v_pipeline.models.rope import rope_tables, rotate_half_blocks


def linear_as_conv1x1(x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """A Linear's weights applied as a 1x1 convolution to (B, C, 1, S)."""
    return F.conv2d(x, linear.weight[:, :, None, None], linear.bias)


def _rms_norm(x: torch.Tensor, norm: nn.RMSNorm) -> torch.Tensor:
    """RMSNorm over the channel axis of (B, C, 1, S)."""
    scale = torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + norm.eps)
    return x * scale * norm.weight[:, None, None]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on one head (B, d, 1, S) with (d, 1, S) tables."""
    return x * cos + rotate_half_blocks(x, dim=1) * sin


class _MobileAttention(nn.Module):
    def __init__(self, source: nn.Module, grid: LatentGrid, config: DenoiserConfig):
        super().__init__()
        self.source = source
        self.num_heads, self.head_dim = source.num_heads, config.head_dim
        cos, sin = rope_tables(  # (S, d)
            grid, config.head_dim, config.rope_theta, config.rope_position_scale(grid)
        )
        self.register_buffer("cos", cos.T.unsqueeze(1).contiguous(), persistent=False)  # (d, 1, S)
        self.register_buffer("sin", sin.T.unsqueeze(1).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None = None, sin: torch.Tensor | None = None):
        """Tokens (B, N, C), as the training block calls attention (its RoPE tables are ignored: this module
        has its own constants) -> (B, N, C). `forward_4d` is the channels-first form."""
        return self.forward_4d(x.transpose(1, 2).unsqueeze(2)).squeeze(2).transpose(1, 2)

    def _heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(x.split(self.head_dim, dim=1))


class MobileLinearAttention(_MobileAttention):
    """`LinearAttention` in channels-first form."""

    def forward_4d(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, S) -> (B, C, 1, S), float32 inside."""
        source = self.source
        q, k, v = linear_as_conv1x1(x, source.qkv).float().chunk(3, dim=1)
        q, k = _rms_norm(q, source.q_norm), _rms_norm(k, source.k_norm)
        ones = torch.ones_like(v[:, :1])  # V padded with a row of ones: the normaliser's row
        outputs = []
        for q_h, k_h, v_h in zip(self._heads(q), self._heads(k), self._heads(v), strict=True):
            q_h = F.relu(_rotate(q_h, self.cos, self.sin))
            k_h = F.relu(_rotate(k_h, self.cos, self.sin))
            state = torch.einsum("bdis,beis->bde", k_h, torch.cat([v_h, ones], dim=1))  # (B, d, d + 1)
            out = torch.einsum("bdis,bde->beis", q_h, state)  # (B, d + 1, 1, S)
            outputs.append(out[:, :-1] / (out[:, -1:] + source.eps))
        return linear_as_conv1x1(torch.cat(outputs, dim=1).to(x.dtype), source.proj)


class MobileSoftmaxAttention(_MobileAttention):
    """`SoftmaxAttention` in channels-first form, with an explicit softmax (no fused op)."""

    def forward_4d(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, S) -> (B, C, 1, S), float32 inside."""
        q, k, v = linear_as_conv1x1(x, self.source.qkv).float().chunk(3, dim=1)
        outputs = []
        for q_h, k_h, v_h in zip(self._heads(q), self._heads(k), self._heads(v), strict=True):
            q_h = _rotate(q_h, self.cos, self.sin) * self.head_dim**-0.5
            scores = torch.einsum("bdis,bdit->bst", q_h, _rotate(k_h, self.cos, self.sin))  # (B, S, S)
            outputs.append(torch.einsum("bst,bdit->bdis", scores.softmax(dim=-1), v_h))
        return linear_as_conv1x1(torch.cat(outputs, dim=1).to(x.dtype), self.source.proj)


def use_mobile_attention(model: nn.Module, grid: LatentGrid) -> nn.Module:
    """Swap every attention of a trained denoiser for its mobile form on `grid`, in place; the mobile modules
    share the trained parameters. Returns the model."""
    config = model.config
    for block in model.blocks:
        attention = block.attn.source if isinstance(block.attn, _MobileAttention) else block.attn
        mobile = {LinearAttention: MobileLinearAttention, SoftmaxAttention: MobileSoftmaxAttention}
        block.attn = mobile[type(attention)](attention, grid, config)
    return model
