"""Model card: the paper's size and compute, and the analytic MAC count against a measured one."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid, get_preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.model_card import (
    count_macs,
    count_parameters_of,
    format_model_card,
    model_card,
)


@pytest.fixture(scope="module")
def paper_card() -> dict:
    return model_card(get_preset("paper"))


def test_paper_model_has_the_published_size(paper_card: dict) -> None:
    assert paper_card["params"] == 264_855_296  # without the public code's unused text path
    assert sum(paper_card["params_by_part"].values()) == paper_card["params"]
    blocks = sum(n for part, n in paper_card["params_by_part"].items() if part.startswith("blocks_"))
    assert 15.2e6 <= blocks / 16 <= 15.4e6
    assert "without the text path" in paper_card["params_note"]
    assert "267,218,048" in paper_card["params_note"]
    with_text = model_card(
        replace(get_preset("paper"), denoiser=replace(get_preset("paper").denoiser, caption_embedder=True))
    )
    assert with_text["params"] == 267_218_048  # the public code's count, part for part
    assert with_text["params_by_part"]["caption_embedder"] == 2_361_600  # y_embedder
    assert with_text["params_by_part"]["caption_norm"] == 1_152  # attention_y_norm
    assert count_parameters_of(replace(get_preset("paper").denoiser, caption_embedder=True)) == 267_218_048


def test_paper_card_describes_the_latent_and_the_block_mix(paper_card: dict) -> None:
    assert paper_card["latent_shape"] == [128, 3, 23, 40]
    assert paper_card["tokens"] == 2760
    assert paper_card["block_pattern"] == "LLLLLLLSLLLLLLLS"
    assert paper_card["block_mix"] == "14:2"
    assert paper_card["head_dim"] == 72 and paper_card["ffn_hidden"] == 2880
    json.dumps(paper_card)  # JSON-ready for `mobilei2v model-card --json`


def test_paper_model_costs_about_0_71_tmac_per_call(paper_card: dict) -> None:
    assert 0.65e12 <= paper_card["macs_per_call"] <= 0.78e12
    assert sum(paper_card["macs_by_part"].values()) == paper_card["macs_per_call"]
    assert 33e9 <= paper_card["macs_by_part"]["softmax_attention_products"] <= 37e9  # the two softmax blocks


@pytest.mark.parametrize(
    ("config", "grid"),
    [
        (get_preset("tiny").denoiser, get_preset("tiny").latent_grid),
        (
            DenoiserConfig(latent_channels=8, hidden_size=54, depth=3, num_heads=3, softmax_blocks=(0, 1, 2)),
            LatentGrid(3, 5, 7),
        ),
    ],
    ids=["tiny", "all-softmax"],
)
def test_analytic_macs_match_pytorch_flop_counter(config: DenoiserConfig, grid: LatentGrid) -> None:
    model = MobileI2VDenoiser(config)
    latents = torch.randn(1, config.latent_channels, grid.frames, grid.height, grid.width)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(latents, torch.rand(1, grid.frames), torch.rand(1))
    measured_macs = counter.get_total_flops() / 2  # the counter sees matmuls and convolutions only
    assert sum(count_macs(config, grid).values()) == pytest.approx(measured_macs, rel=0.01)


def test_formatted_card_reads_well(paper_card: dict) -> None:
    text = format_model_card(paper_card)
    for expected in ("'paper'", "128 x 3 x 23 x 40", "2760 tokens", "LLLLLLLSLLLLLLLS", "14:2", "264.86M"):
        assert expected in text
    assert text.count("\n") >= len(paper_card["params_by_part"]) + len(paper_card["macs_by_part"])
