"""Self-attention of the MobileI2V blocks: ReLU linear attention (O(N) in tokens, 14 of the 16 blocks) and
softmax attention (O(N^2), the other 2). Both take tokens (B, N, C) and the 3D RoPE tables of their grid.

Both compute the attention itself in float32 with autocast off, whatever the input dtype: the public code
trains in fp16 with fp32 attention, and the linear form sums over all N tokens before it divides.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobilei2v_pipeline.models.rope import apply_rope


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, heads, N, C / heads)."""
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    return x.transpose(1, 2).flatten(2)


def relu_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, eps: float
) -> torch.Tensor:
    """out_i = sum_j <q'_i, k'_j> v_j / (sum_j <q'_i, k'_j> + eps), with q' = ReLU(R q) and k' = ReLU(R k),
    R the RoPE rotation of each token. Inputs and output (B, heads, N, d); computed in float32.

    The public code's LiteLA order: RoPE first, then the ReLU kernel, so the features are non-negative and
    the normaliser, computed from the same features, is >= 0. V is padded with a column of ones, so one
    (K^T [V 1]) state gives the numerator and the normaliser together: a d x (d + 1) state per head, linear
    in N, and no N x N matrix exists.
    """
    with torch.autocast(q.device.type, enabled=False):
        q = F.relu(apply_rope(q.float(), cos, sin))
        k = F.relu(apply_rope(k.float(), cos, sin))
        v = F.pad(v.float(), (0, 1), value=1.0)
        out = torch.einsum("bhnd,bhde->bhne", q, torch.einsum("bhnd,bhne->bhde", k, v))
        return out[..., :-1] / (out[..., -1:] + eps)


class LinearAttention(nn.Module):
    """ReLU linear attention with RMSNorm on q and k (over all channels, before the head split) and 3D RoPE;
    qkv without bias, as the public code's LiteLA."""

    def __init__(self, hidden_size: int, num_heads: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.eps = eps
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.q_norm = nn.RMSNorm(hidden_size, eps=1e-5)
        self.k_norm = nn.RMSNorm(hidden_size, eps=1e-5)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        # In the norms' dtype: under autocast q and k arrive in half precision while the weights are float32.
        dtype = self.q_norm.weight.dtype
        q, k = self.q_norm(q.to(dtype)), self.k_norm(k.to(dtype))
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))
        out = relu_linear_attention(q, k, v, cos, sin, self.eps)
        return self.proj(merge_heads(out).to(x.dtype))


class SoftmaxAttention(nn.Module):
    """Softmax attention with 3D RoPE; qkv with bias.

    Computed as explicit matmul + softmax by default because the mobile converter has no fused attention
    op; `use_sdpa=True` uses PyTorch's fused kernel instead (same result, less memory on a GPU).
    """

    def __init__(self, hidden_size: int, num_heads: int, use_sdpa: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.use_sdpa = use_sdpa
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.num_heads) for t in self.qkv(x).chunk(3, dim=-1))
        with torch.autocast(x.device.type, enabled=False):
            q, k, v = apply_rope(q.float(), cos, sin), apply_rope(k.float(), cos, sin), v.float()
            if self.use_sdpa:
                out = F.scaled_dot_product_attention(q, k, v)
            else:
                scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # scale q: N*d, not N*N, multiplies
                out = scores.softmax(dim=-1) @ v
        return self.proj(merge_heads(out).to(x.dtype))
