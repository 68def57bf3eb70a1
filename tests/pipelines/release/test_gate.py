"""The champion/challenger gate on figures alone."""

from __future__ import annotations

import math

import pytest

from mobilei2v_pipeline.pipelines.release.gate import judge

GATE = {
    "quality": {
        "psnr": {"tolerance": 0.5},
        "motion_error": {"tolerance": 0.1, "lower_is_better": True},
    },
    "latency_budgets_ms": {"per_frame_latency_ms": 100.0},
}
CHAMPION = {"psnr": 30.0, "motion_error": 1.0, "per_frame_latency_ms": 50.0}


def test_the_first_challenger_needs_only_its_latency_budget():
    decision = judge({"psnr": 1.0, "motion_error": 9.0, "per_frame_latency_ms": 99.0}, None, GATE)
    assert decision.promoted
    assert decision.reason == "promoted: no champion yet; all 3 checks passed"
    assert decision.checks["reason"].str.endswith("(no champion yet)").sum() == 2
    assert not judge({"psnr": 1.0, "motion_error": 9.0, "per_frame_latency_ms": 101.0}, None, GATE).promoted


def test_a_challenger_within_every_tolerance_is_promoted():
    decision = judge({"psnr": 29.6, "motion_error": 1.05, "per_frame_latency_ms": 80.0}, CHAMPION, GATE)
    assert decision.promoted and decision.reason == "promoted: all 3 checks passed"
    reason = "psnr 29.6 vs champion 30: within tolerance 0.5 (needs at least 29.5)"
    assert decision.checks["reason"][0] == reason


@pytest.mark.parametrize(
    ("figures", "failed"),
    [
        ({"psnr": 29.4, "motion_error": 1.0, "per_frame_latency_ms": 50.0}, "psnr"),
        ({"psnr": 30.0, "motion_error": 1.2, "per_frame_latency_ms": 50.0}, "motion_error"),
        ({"psnr": 30.0, "motion_error": 1.0, "per_frame_latency_ms": 120.0}, "per_frame_latency_ms"),
        ({"psnr": math.nan, "motion_error": 1.0, "per_frame_latency_ms": 50.0}, "psnr"),
    ],
)
def test_one_figure_out_of_bounds_rejects_the_challenger(figures, failed):
    decision = judge(figures, CHAMPION, GATE)
    assert not decision.promoted
    assert decision.checks.loc[~decision.checks["passed"], "figure"].tolist() == [failed]
    assert decision.reason.startswith(f"rejected: {failed}")


def test_a_figure_the_champion_lacks_is_not_compared_but_one_the_challenger_lacks_is_an_error():
    decision = judge({"psnr": 1.0, "motion_error": 1.0, "per_frame_latency_ms": 1.0}, {"psnr": 1.2}, GATE)
    assert decision.promoted
    assert "motion_error: the champion has none" in decision.checks["reason"].tolist()
    with pytest.raises(KeyError, match="per_frame_latency_ms"):
        judge({"psnr": 1.0, "motion_error": 1.0}, CHAMPION, GATE)
