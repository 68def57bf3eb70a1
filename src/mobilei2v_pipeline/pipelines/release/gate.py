"""The champion/challenger gate: a new model (the challenger) replaces the one in use (the champion) only if
every configured quality figure is within its tolerance of the champion's and every latency budget holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

GATE_COLUMNS = ["check", "figure", "challenger", "champion", "limit", "passed", "reason"]


@dataclass(frozen=True)
class Decision:
    promoted: bool
    checks: pd.DataFrame  # one row per check, GATE_COLUMNS
    first: bool  # there was no champion

    @property
    def reason(self) -> str:
        """Why, in one line: the failed checks, or that all passed."""
        failed = self.checks.loc[~self.checks["passed"], "reason"].tolist()
        if failed:
            return "rejected: " + "; ".join(failed)
        return f"promoted: {'no champion yet; ' if self.first else ''}all {len(self.checks)} checks passed"


def gate_figures(gate: dict[str, Any]) -> list[str]:
    """Every figure the gate reads: its quality figures, then its latency figures."""
    return [*gate["quality"], *gate["latency_budgets_ms"]]


def judge(challenger: dict[str, float], champion: dict[str, float] | None, gate: dict[str, Any]) -> Decision:
    """Compare the challenger's figures with the champion's (None: there is no champion yet).

    `gate["quality"]` maps a figure to `{tolerance, lower_is_better (default false)}`: the challenger may be
    worse than the champion by at most the tolerance. `gate["latency_budgets_ms"]` maps a figure to the most
    it may be, whatever the champion's. A figure the challenger lacks is a configuration error; one the
    champion lacks (it was registered before the figure existed) is not compared.
    """
    missing = [f for f in gate_figures(gate) if f not in challenger]
    if missing:
        known = sorted(challenger)
        raise KeyError(
            f"the release gate reads {missing}, which no stage reported (a figure that is not finite, such "
            f"as the PSNR of two identical videos, is left out of the metrics); known: {known}"
        )
    rows = [_quality_check(f, challenger[f], champion, **spec) for f, spec in gate["quality"].items()]
    for figure, budget in gate["latency_budgets_ms"].items():
        value = challenger[figure]
        passed = math.isfinite(value) and value <= budget
        sign = "<=" if passed else ">"
        reason = f"{figure} {value:.4g} ms {sign} budget {budget:.4g} ms"
        reference = (champion or {}).get(figure, math.nan)
        rows.append(["latency", figure, value, reference, budget, passed, reason])
    checks = pd.DataFrame(rows, columns=GATE_COLUMNS).astype({"passed": bool})
    return Decision(bool(checks["passed"].all()), checks, champion is None)


def _quality_check(
    figure: str,
    value: float,
    champion: dict[str, float] | None,
    tolerance: float,
    lower_is_better: bool = False,
) -> list:
    reference = (champion or {}).get(figure, math.nan)
    unlimited = ["quality", figure, value, reference, math.nan]
    if not math.isfinite(value):
        return [*unlimited, False, f"{figure} is {value}"]
    if champion is None:
        return [*unlimited, True, f"{figure} {value:.4g} (no champion yet)"]
    if not math.isfinite(reference):
        return [*unlimited, True, f"{figure}: the champion has none"]
    limit = reference + tolerance if lower_is_better else reference - tolerance
    passed = value <= limit if lower_is_better else value >= limit
    word = "at most" if lower_is_better else "at least"
    verdict = "within" if passed else "outside"
    reason = (
        f"{figure} {value:.4g} vs champion {reference:.4g}: {verdict} tolerance {tolerance:g} "
        f"(needs {word} {limit:.4g})"
    )
    return ["quality", figure, value, reference, limit, passed, reason]
