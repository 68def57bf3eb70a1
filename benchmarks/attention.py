"""Benchmark of one attention layer at the paper's width: ReLU linear attention vs softmax attention.

One LinearAttention and one SoftmaxAttention layer of the paper's denoiser (hidden 1152, 16 heads of 72),
batch 1, fp32, under torch.inference_mode with 2 threads, at 920, 2760 and 11040 tokens: 1, 3 and 12 latent
frames of 23 x 40 (one 720p frame, the paper's 17-frame clip, four times that). For each it reports

- the median latency over repeats (after one warm-up call), its analytic MACs (projections + attention
  products, the formulas of models/model_card.py) and the GFLOP/s that makes;
- the growth exponent: the least-squares slope of log latency against log tokens over the sizes, and the
  slope between neighbouring sizes (1 is linear in tokens, 2 quadratic).

Softmax attention builds a (16, N, N) float32 score matrix and its softmax (2 x 7.8 GB at 11040 tokens);
a size whose estimate does not fit in 80% of the available memory is skipped and reported as such.
Nothing is asserted. Another busy process on 2 cores skews timings, so the load average is recorded and
each size reports its CPU seconds per wall second (2.0 with 2 threads that had the cores to themselves).

Run from the repository root:

    python benchmarks/attention.py            # the full benchmark, a few minutes on 2 cores
    python benchmarks/attention.py --quick    # fewer repeats

It prints a table and writes JSON to benchmarks/results/attention.json (attention_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch
from report import log, machine_info, text_table

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.models.attention import LinearAttention, SoftmaxAttention
from mobilei2v_pipeline.models.config import PRESETS, LatentGrid
from mobilei2v_pipeline.models.model_card import attention_product_macs
from mobilei2v_pipeline.models.rope import rope_tables

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PAPER = PRESETS["paper"].denoiser
FRAME = PRESETS["paper"].latent_grid  # 23 x 40 cells per latent frame
FRAMES = (1, 3, 12)  # 920, 2760, 11040 tokens
LAYERS = {"linear": LinearAttention, "softmax": SoftmaxAttention}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per layer and size (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--output", type=Path, default=None, help="JSON path (results/attention.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 2
    if args.output is None:
        args.output = RESULTS_DIR / ("attention_quick.json" if args.quick else "attention.json")
    return args


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def layer_macs(kind: str, tokens: int) -> int:
    projections = 4 * tokens * PAPER.hidden_size**2  # qkv and output projection
    return projections + attention_product_macs(PAPER.hidden_size, PAPER.num_heads, tokens, kind == "softmax")


def time_layer(layer: torch.nn.Module, grid: LatentGrid, repeats: int) -> tuple[list[float], list[float]]:
    """Wall times of the calls, and the CPU seconds per wall second of each (at most the thread count:
    less means other processes held the cores)."""
    cos, sin = rope_tables(grid, PAPER.head_dim, PAPER.rope_theta, PAPER.rope_position_scale(grid))
    x = torch.randn(1, grid.tokens, PAPER.hidden_size)
    times, cpu_per_wall = [], []
    with torch.inference_mode():
        layer(x, cos, sin)  # warm-up
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            layer(x, cos, sin)
            times.append(time.perf_counter() - start)
            cpu_per_wall.append((time.process_time() - cpu_start) / times[-1])
    return times, cpu_per_wall


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def growth(rows: list[dict]) -> dict:
    measured = [r for r in rows if "median_s" in r]
    if len(measured) < 2:
        return {"fit": None, "pairwise": []}
    tokens, times = [r["tokens"] for r in measured], [r["median_s"] for r in measured]
    pairwise = [
        {"from": tokens[i], "to": tokens[i + 1], "exponent": slope(tokens[i : i + 2], times[i : i + 2])}
        for i in range(len(tokens) - 1)
    ]
    return {"fit": slope(tokens, times), "pairwise": pairwise}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results: dict[str, dict] = {}
    for kind, attention in LAYERS.items():
        layer = attention(PAPER.hidden_size, PAPER.num_heads).eval()
        rows = []
        for frames in FRAMES:
            grid = LatentGrid(frames, FRAME.height, FRAME.width)
            row: dict = {"tokens": grid.tokens, "grid": [grid.frames, grid.height, grid.width]}
            row["macs"] = layer_macs(kind, grid.tokens)
            need = 2 * PAPER.num_heads * grid.tokens**2 * 4 if kind == "softmax" else 0  # scores + softmax
            available = available_bytes()
            if need > 0.8 * available:
                row["skipped"] = f"needs ~{need / 2**30:.1f} GiB, {available / 2**30:.1f} GiB available"
                log(f"{kind:>7} at {grid.tokens:>5} tokens: skipped ({row['skipped']})")
            else:
                times, cpu_per_wall = time_layer(layer, grid, args.repeats)
                row.update(median_s=statistics.median(times), times_s=times)
                row["cpu_per_wall"] = statistics.median(cpu_per_wall)
                row["gflop_per_s"] = 2 * row["macs"] / row["median_s"] / 1e9
                log(f"{kind:>7} at {grid.tokens:>5} tokens: median {row['median_s'] * 1e3:.1f} ms")
            rows.append(row)
        results[kind] = {"sizes": rows, "growth_exponent": growth(rows)}
        del layer
    return results


def format_table(results: dict) -> str:
    header = ["layer", "tokens", "median ms", "GMAC", "GFLOP/s", "CPU/wall"]
    rows = []
    for kind, result in results.items():
        for r in result["sizes"]:
            measured = "median_s" in r
            rows.append(
                [
                    kind,
                    str(r["tokens"]),
                    f"{r['median_s'] * 1e3:.1f}" if measured else "skipped",
                    f"{r['macs'] / 1e9:.2f}",
                    f"{r['gflop_per_s']:.1f}" if measured else "-",
                    f"{r['cpu_per_wall']:.2f}" if measured else "-",
                ]
            )
    table = text_table(header, rows, left_columns=1)
    growth_lines = []
    for kind, result in results.items():
        g = result["growth_exponent"]
        if g["fit"] is None:
            continue
        pairs = ", ".join(f"{p['from']}->{p['to']}: {p['exponent']:.2f}" for p in g["pairwise"])
        growth_lines.append(f"{kind:>7}: latency ~ tokens^{g['fit']:.2f} (fit); between sizes {pairs}")
    speedups = []
    for lin, soft in zip(results["linear"]["sizes"], results["softmax"]["sizes"], strict=True):
        if "median_s" in lin and "median_s" in soft:
            speedups.append(f"{lin['tokens']}: {soft['median_s'] / lin['median_s']:.1f}x")
    return "\n".join(
        [table, "", "growth exponent", *growth_lines, "softmax / linear latency: " + ", ".join(speedups)]
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_before = os.getloadavg()
    log(f"attention layers at hidden {PAPER.hidden_size}, {PAPER.num_heads} heads; {args.repeats} repeats")
    results = run(args)
    report = {
        "settings": {
            "hidden_size": PAPER.hidden_size,
            "num_heads": PAPER.num_heads,
            "batch": 1,
            "dtype": "float32",
            "threads": args.threads,
            "repeats": args.repeats,
            "quick": args.quick,
        },
        "machine": machine_info(
            torch=torch.__version__, load_average_before=load_before, load_average_after=os.getloadavg()
        ),
        "results": results,
    }
    atomic_write_bytes(args.output, (json.dumps(report, indent=2) + "\n").encode())
    print()
    print(format_table(results))
    print(f"\nload average (1 min) before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
