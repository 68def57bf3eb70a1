"""Export-time forms of the two attentions for mobile runtimes (docs/denoiser.md, "The export form").

Same weights, same results, different shapes of work: activations stay 4D and channels-first, (B, C, 1, S), so
every projection is a 1x1 convolution, one per output (q, k, v) rather than one sliced afterwards; the heads
are a free view, (B * heads, d, S), and the attention products are batched matrix multiplies; the RoPE tables
are constants of the static export grid, laid out (d, S), and the signed channel swap of the rotation is a 1x1
convolution with a constant +-1 permutation matrix; the norms' channel means are 1x1 convolutions with
constant weights; there is no fused SDPA op. So no activation is ever sliced: ExecuTorch's XNNPACK delegate
takes every op (it takes no einsum, no split, a mean only over the last two axes of a 4D tensor, and a
quantized slice only when its consumers keep its quantization, which PT2E's do not), ONNX Runtime runs no
Split, and QNN and Core ML run everything natively. The linear attention works with means over the tokens, not
sums, so its products stay within fp16's range at any token count (Core ML computes in fp16).

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


def channel_slices(x: torch.Tensor, parts: int) -> list[torch.Tensor]:
    """`x.chunk(parts, dim=1)` as slices: mobile delegates take a slice, not a split."""
    size = x.shape[1] // parts
    return [x[:, i * size : (i + 1) * size] for i in range(parts)]


def conv1x1_parts(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, parts: int
) -> list[torch.Tensor]:
    """A 1x1 convolution of (B, C, 1, S) with `weight` (out, C, 1, 1) as `parts` convolutions, one per
    consecutive block of output channels: `channel_slices(conv(x), parts)` with the constant weights
    sliced instead of the activation (the export folds them)."""
    weights = weight_slices(weight, parts)
    biases = weight_slices(bias, parts) if bias is not None else [None] * parts
    return [F.conv2d(x, w, b) for w, b in zip(weights, biases, strict=True)]


def weight_slices(weight: torch.Tensor, parts: int) -> list[torch.Tensor]:
    """`weight.chunk(parts)` along its first axis as sliced copies. Slices: the ONNX exporter leaves a chunk
    of an initializer as a Split node. Copies: ExecuTorch 1.5 serialises a folded constant that is a view of
    another's storage from the start of that storage (a split weight's second half came out as its first)."""
    size = weight.shape[0] // parts
    return [weight[i * size : (i + 1) * size].clone() for i in range(parts)]


class ChannelMean(nn.Module):
    """The mean over the channels of (B, C, 1, S), keeping the axis, as a 1x1 convolution with constant
    weights 1 / C (XNNPACK's mean only reduces the last two axes of a 4D tensor)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("weight", torch.full((1, channels, 1, 1), 1.0 / channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight)


def _rms_norm(x: torch.Tensor, norm: nn.RMSNorm, mean: ChannelMean) -> torch.Tensor:
    """RMSNorm over the channel axis of (B, C, 1, S)."""
    return x * torch.rsqrt(mean(x * x) + norm.eps) * norm.weight[:, None, None]


class _MobileAttention(nn.Module):
    def __init__(self, source: nn.Module, grid: LatentGrid, config: DenoiserConfig):
        super().__init__()
        self.source = source
        self.num_heads, self.head_dim = source.num_heads, config.head_dim
        cos, sin = rope_tables(  # (S, d)
            grid, config.head_dim, config.rope_theta, config.rope_position_scale(grid)
        )
        self.register_buffer("cos", cos.T.contiguous(), persistent=False)  # (d, S)
        self.register_buffer("sin", sin.T.contiguous(), persistent=False)
        # rotate_half_blocks over the head's channels as a matrix: row i picks (+-) the channel it moves
        swap = rotate_half_blocks(torch.eye(config.head_dim), dim=0)
        self.register_buffer("swap", swap[:, :, None, None], persistent=False)  # (d, d, 1, 1), a conv weight
        self.channel_mean = ChannelMean(config.hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None = None, sin: torch.Tensor | None = None):
        """Tokens (B, N, C), as the training block calls attention (its RoPE tables are ignored: this module
        has its own constants) -> (B, N, C). `forward_4d` is the channels-first form."""
        return self.forward_4d(x.transpose(1, 2).unsqueeze(2)).squeeze(2).transpose(1, 2)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, S) -> (B * heads, d, S), a view."""
        return x.reshape(-1, self.head_dim, x.shape[-1])

    def _rotate(self, x: torch.Tensor) -> torch.Tensor:
        """RoPE on (B * heads, d, S)."""
        swapped = F.conv2d(x.view(*x.shape[:2], 1, -1), self.swap).view_as(x)  # 2D: XNNPACK's 1D is fragile
        return x * self.cos + swapped * self.sin

    def _qkv(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The q, k and v projections of (B, C, 1, S), float32."""
        qkv = self.source.qkv
        return [t.float() for t in conv1x1_parts(x, qkv.weight[:, :, None, None], qkv.bias, 3)]

    def _merge(self, heads: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(B * heads, d, S) -> the (B, C, 1, S) layout and dtype of `like`."""
        return heads.reshape(like.shape).to(like.dtype)


class MobileLinearAttention(_MobileAttention):
    """`LinearAttention` in channels-first form."""

    def forward_4d(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, S) -> (B, C, 1, S), float32 inside."""
        source = self.source
        q, k, v = self._qkv(x)
        q = self._heads(_rms_norm(q, source.q_norm, self.channel_mean))
        k = self._heads(_rms_norm(k, source.k_norm, self.channel_mean))
        q, k, v = F.relu(self._rotate(q)), F.relu(self._rotate(k)), self._heads(v)
        # Both sums over the S tokens divided by S (means, within fp16's range at any S), so the eps too:
        # out_i = (1/S) sum_j <q_i, k_j> v_j / ((1/S) sum_j <q_i, k_j> + eps / S).
        tokens = k.shape[-1]
        state = torch.bmm(v, k.transpose(1, 2) * (1.0 / tokens))  # (B * heads, d, d)
        numerator = torch.bmm(state, q)  # (B * heads, d, S)
        # the mean over tokens as a 4D mean over the last two axes
        k_mean = k.view(*k.shape[:2], 1, tokens).mean(dim=(2, 3), keepdim=True).view(k.shape[0], 1, -1)
        # (B * heads, 1, d); a view, not an unsqueeze, which XNNPACK does not take
        normaliser = torch.bmm(k_mean, q)  # (B * heads, 1, S)
        out = numerator / (normaliser + source.eps / tokens)
        return linear_as_conv1x1(self._merge(out, x), source.proj)


class MobileSoftmaxAttention(_MobileAttention):
    """`SoftmaxAttention` in channels-first form, with an explicit softmax (no fused op)."""

    def forward_4d(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, S) -> (B, C, 1, S), float32 inside."""
        q, k, v = (self._heads(t) for t in self._qkv(x))
        q = self._rotate(q) * self.head_dim**-0.5
        scores = torch.bmm(q.transpose(1, 2), self._rotate(k))  # (B * heads, S, S), softmax over the last
        out = torch.bmm(scores.softmax(dim=-1), v.transpose(1, 2)).transpose(1, 2)  # (B * heads, d, S)
        return linear_as_conv1x1(self._merge(out, x), self.source.proj)


def use_mobile_attention(model: nn.Module, grid: LatentGrid) -> nn.Module:
    """Swap every attention of a trained denoiser for its mobile form on `grid`, in place; the mobile modules
    share the trained parameters. Returns the model."""
    config = model.config
    for block in model.blocks:
        attention = block.attn.source if isinstance(block.attn, _MobileAttention) else block.attn
        mobile = {LinearAttention: MobileLinearAttention, SoftmaxAttention: MobileSoftmaxAttention}
        block.attn = mobile[type(attention)](attention, grid, config)
    return model
