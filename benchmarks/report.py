"""What every benchmark script shares: timestamped progress lines, plain-text tables, the machine block, where
results go, the pipeline's quantization parameters."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"


def quantization_settings() -> dict:
    """The pipeline's quantization parameters (conf/base), so a benchmark quantizes as the stage does."""
    return yaml.safe_load((REPO / "conf/base/parameters_quantization.yml").read_text())["quantization"]


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


def machine_info(**libraries: object) -> dict:
    """The machine a JSON report was measured on, plus the versions and settings a benchmark names."""
    return {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        **libraries,
    }
