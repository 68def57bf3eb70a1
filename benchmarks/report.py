"""What every benchmark script shares: timestamped progress lines and plain-text tables."""

from __future__ import annotations

import time


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def text_table(header: list[str], rows: list[list[str]], left_columns: int = 1) -> str:
    """Aligned columns: the first `left_columns` left-aligned, the numbers after them right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < left_columns else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [header, ["-" * w for w in widths], *rows]
    )
