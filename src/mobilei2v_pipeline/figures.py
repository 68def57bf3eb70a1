"""Tables as the flat figures of a metrics file: `<row>_<column>` for every finite value."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def flat_figures(table: pd.DataFrame, key: str, columns: Iterable[str], prefix: str = "") -> dict[str, float]:
    """`{prefix}{row[key]}_{column}` for every row and column of `table` whose value is finite (a row's
    agreement with itself is infinite, a figure that does not apply is NaN: neither goes into a file that
    `dvc metrics diff` compares)."""
    return {
        f"{prefix}{row[key]}_{column}": float(row[column])
        for row in table.to_dict("records")
        for column in columns
        if np.isfinite(row[column])
    }
