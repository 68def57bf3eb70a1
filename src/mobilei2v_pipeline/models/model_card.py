"""Model card of a preset: parameters by part, the latent it runs on and the multiply-accumulates (MACs) of
one denoiser call.

Parameters are counted on a model built on the meta device (no memory, instant). MACs are counted
analytically, batch 1, with N tokens, T latent frames, hidden C, FFN hidden F, h heads of d, L latent
channels and E = frequency_embedding_size:

- linear layers: patch embed N*L*C and final layer N*C*L; the timestep embedder once per latent frame,
  T * (E*C + C*C + C*6C), the motion embedder once; per block qkv 3*N*C^2 and output projection N*C^2.
- linear attention products, per block: h * (N*d*(d+1) for K^T [V 1], N*d*(d+1) for Q (K^T [V 1])): V padded
  with a row of ones gives the normaliser in the same products.
- softmax attention products, per block: h * (N*N*d for Q K^T, N*N*d for softmax(.) V).
- FFN convolutions, per block: pointwise N*C*2F and N*F*C; depthwise 3x3 9*N*2F (each output cell pays the
  whole kernel, padding included, as PyTorch's FLOP counter does).

Element-wise work (norms, activations, softmax exponentials, RoPE, modulation) is not counted; a test checks
the formulas against torch.utils.flop_counter on a real forward pass.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from mobilei2v_pipeline.models.attention import LinearAttention, SoftmaxAttention
from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid, Preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_parameters_of(config: DenoiserConfig) -> int:
    with torch.device("meta"):
        return count_parameters(MobileI2VDenoiser(config))


def parameters_by_part(config: DenoiserConfig) -> dict[str, int]:
    """Parameter counts of the denoiser's parts; they sum to the whole model."""
    with torch.device("meta"):
        model = MobileI2VDenoiser(config)
    blocks = list(model.blocks)
    parts = {
        "patch_embed": count_parameters(model.patch_embed),
        "timestep_embedder": count_parameters(model.timestep_embedder),  # MLP and its 6*C projection
        "motion_embedder": count_parameters(model.motion_embedder),
        "blocks_linear_attention": sum(
            count_parameters(b.attn) for b in blocks if isinstance(b.attn, LinearAttention)
        ),
        "blocks_softmax_attention": sum(
            count_parameters(b.attn) for b in blocks if isinstance(b.attn, SoftmaxAttention)
        ),
        "blocks_ffn": sum(count_parameters(b.ffn) for b in blocks),
        "blocks_modulation": sum(b.scale_shift_table.numel() for b in blocks),
        "final_layer": count_parameters(model.final_layer),
    }
    if config.caption_embedder:
        parts["caption_embedder"] = count_parameters(model.caption_embedder)  # y_embedder
        parts["caption_norm"] = count_parameters(model.caption_norm)  # attention_y_norm
    if sum(parts.values()) != count_parameters(model):
        raise RuntimeError("parameters_by_part misses a part of MobileI2VDenoiser; add it to the table")
    return parts


def attention_product_macs(hidden_size: int, num_heads: int, tokens: int, softmax: bool) -> int:
    """MACs of one attention layer's products, without its qkv and output projections (4 * N * C^2)."""
    n, d = tokens, hidden_size // num_heads
    return num_heads * (2 * n * n * d if softmax else 2 * n * d * (d + 1))


def count_macs(config: DenoiserConfig, grid: LatentGrid) -> dict[str, int]:
    """Multiply-accumulates of one forward pass (batch 1) by part; see the module docstring."""
    n, c, f = grid.tokens, config.hidden_size, config.ffn_hidden
    latent, e = config.latent_channels, config.frequency_embedding_size
    softmax = len(config.softmax_blocks)
    linear = config.depth - softmax
    embedder = e * c + c * c + c * 6 * c
    return {
        "linear_layers": 2 * n * latent * c + (grid.frames + 1) * embedder + config.depth * 4 * n * c * c,
        "linear_attention_products": linear * attention_product_macs(c, config.num_heads, n, softmax=False),
        "softmax_attention_products": softmax * attention_product_macs(c, config.num_heads, n, softmax=True),
        "ffn_pointwise_convs": config.depth * (n * c * 2 * f + n * f * c),
        "ffn_depthwise_convs": config.depth * 9 * n * 2 * f,
    }


def model_card(preset: Preset) -> dict[str, Any]:
    """What the preset's denoiser is: shapes, parameters by part and MACs per call (JSON-ready)."""
    config, grid = preset.denoiser, preset.latent_grid
    params_by_part = parameters_by_part(config)
    params = sum(params_by_part.values())
    macs_by_part = count_macs(config, grid)
    softmax = len(config.softmax_blocks)
    return {
        "preset": preset.name,
        "video_shape": [preset.video_frames, preset.video_height, preset.video_width],
        "compression": {"temporal": preset.temporal_compression, "spatial": preset.spatial_compression},
        "latent_shape": [config.latent_channels, grid.frames, grid.height, grid.width],
        "tokens": grid.tokens,
        "hidden_size": config.hidden_size,
        "depth": config.depth,
        "num_heads": config.num_heads,
        "head_dim": config.head_dim,
        "ffn_hidden": config.ffn_hidden,
        "block_pattern": config.block_pattern,
        "block_mix": f"{config.depth - softmax}:{softmax}",
        "params": params,
        "params_by_part": params_by_part,
        "params_note": _params_note(config, params),
        "macs_per_call": sum(macs_by_part.values()),
        "macs_by_part": macs_by_part,
    }


def _params_note(config: DenoiserConfig, params: int) -> str:
    if config.caption_embedder:
        return (
            f"{params / 1e6:.2f}M includes the text path (caption embedder and its RMSNorm) that the public "
            "code keeps but never uses, as the public code's count does (267,218,048 for the paper model)"
        )
    with_text = count_parameters_of(replace(config, caption_embedder=True))
    return (
        f"{params / 1e6:.2f}M counts the denoiser without the text path that the public code keeps but never "
        f"uses: its caption embedder (Linear {config.caption_channels}->{config.hidden_size}, GELU, Linear "
        f"{config.hidden_size}->{config.hidden_size}) and that embedder's RMSNorm ({config.hidden_size}), "
        f"{with_text - params:,} parameters in all; with them it is {with_text:,} ({with_text / 1e6:.2f}M), "
        "as the public code counts (267,218,048 for the paper model)"
    )


def format_model_card(card: dict[str, Any]) -> str:
    """The card as a few lines for people."""
    c, t, h, w = card["latent_shape"]
    lines = [
        f"MobileI2V denoiser, preset '{card['preset']}'",
        f"  video {' x '.join(map(str, card['video_shape']))} -> latent {c} x {t} x {h} x {w} "
        f"(compression {card['compression']['temporal']}x time, {card['compression']['spatial']}x space)"
        f" = {card['tokens']} tokens",
        f"  {card['depth']} blocks of hidden {card['hidden_size']}, {card['num_heads']} heads of "
        f"{card['head_dim']}, FFN {card['ffn_hidden']}",
        f"  attention per block {card['block_pattern']} (L linear : S softmax = {card['block_mix']})",
        f"  parameters {card['params']:,} ({card['params'] / 1e6:.2f}M)",
    ]
    lines += [f"    {part:<28}{n:>14,}" for part, n in card["params_by_part"].items()]
    lines.append(f"  note: {card['params_note']}")
    total = card["macs_per_call"]
    lines.append(f"  MACs per call {total:,} ({_giga(total)})")
    lines += [
        f"    {part:<28}{_giga(n):>14} {100 * n / total:6.1f}%" for part, n in card["macs_by_part"].items()
    ]
    return "\n".join(lines)


def _giga(n: int) -> str:
    return f"{n / 1e9:.2f} G" if n >= 1e9 else f"{n / 1e6:.2f} M"
