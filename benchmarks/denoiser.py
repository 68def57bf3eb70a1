"""Benchmark of the paper-size denoiser forward on this CPU: all-softmax vs the 14:2 hybrid vs all-linear.

The paper preset's denoiser (264.9M parameters, hidden 1152, 16 blocks) on one 17 x 720p clip's latent,
1 x 128 x 3 x 23 x 40 = 2760 tokens, batch 1, fp32, torch.inference_mode, 2 threads, in three attention
mixes: softmax in all 16 blocks, the paper's hybrid (softmax in blocks 8 and 16, linear elsewhere) and
linear in all 16. For each it reports the median forward latency over repeats (after a warm-up call), the
ratios between the mixes, the analytic MACs (models/model_card.py) and the GFLOP/s achieved (2 x MACs /
latency), against two fp32 references measured in the same run, before and after the models (the higher
counts): a 2048 x 2048 torch.mm (the BLAS) and the FFN's first 1x1 convolution at the paper size
(oneDNN). The mm is not necessarily the CPU's ceiling: on this AMD CPU oneDNN's convolution runs well
above the BLAS, and 61% of the denoiser's MACs are such convolutions. Each model is built in fp32 on the
CPU (about 1 GB) one at a time and freed before the next.

Nothing is asserted. Another busy process on 2 cores skews timings, so the load average is recorded and
each mix reports its CPU seconds per wall second (2.0 with 2 threads that had the cores to themselves).

Run from the repository root:

    python benchmarks/denoiser.py            # the full benchmark: 3 repeats, a few minutes on 2 cores
    python benchmarks/denoiser.py --quick    # 1 repeat, no warm-up

It prints a table and writes JSON to benchmarks/results/denoiser.json (denoiser_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from report import log, machine_info, text_table

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.models.config import PRESETS
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.model_card import count_macs, count_parameters

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PRESET = PRESETS["paper"]
DEPTH = PRESET.denoiser.depth
MIXES = {
    "all-softmax": tuple(range(DEPTH)),
    "hybrid 14:2": PRESET.denoiser.softmax_blocks,
    "all-linear": (),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per mix (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, no warm-up")
    parser.add_argument("--output", type=Path, default=None, help="JSON path (default results/denoiser.json)")
    args = parser.parse_args(argv)
    args.warmup = not args.quick
    if args.quick:
        args.repeats = 1
    if args.output is None:
        args.output = RESULTS_DIR / ("denoiser_quick.json" if args.quick else "denoiser.json")
    return args


def kernel_rate(kernel: Callable[[], object], macs: int, repeats: int) -> float:
    """Median GFLOP/s of a kernel after two warm-up calls."""
    rates = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            start = time.perf_counter()
            kernel()
            if i >= 2:
                rates.append(2 * macs / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def reference_rates(repeats: int) -> dict[str, float]:
    """What this CPU reaches in fp32: a 2048^2 torch.mm (the BLAS) and the FFN's first 1x1 convolution
    at the paper size (oneDNN), which on some CPUs is much faster than the BLAS."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    hidden, ffn, grid = PRESET.denoiser.hidden_size, PRESET.denoiser.ffn_hidden, PRESET.latent_grid
    conv = torch.nn.Conv2d(hidden, 2 * ffn, 1)
    x = torch.randn(grid.frames, grid.height, grid.width, hidden).permute(0, 3, 1, 2)  # as MixFFN feeds it
    return {
        "mm_2048": kernel_rate(lambda: torch.mm(a, b), 2048**3, repeats),
        "conv1x1_ffn": kernel_rate(lambda: conv(x), grid.tokens * hidden * 2 * ffn, repeats),
    }


def time_mix(name: str, softmax_blocks: tuple[int, ...], args: argparse.Namespace) -> dict:
    config = replace(PRESET.denoiser, softmax_blocks=softmax_blocks)
    grid = PRESET.latent_grid
    start = time.perf_counter()
    torch.manual_seed(0)
    model = MobileI2VDenoiser(config).eval()
    build_s = time.perf_counter() - start
    latents = torch.randn(1, config.latent_channels, grid.frames, grid.height, grid.width)
    timesteps = torch.tensor([[0.0, 0.6, 0.6]])  # frame 0 is the clean image latent
    motion = torch.tensor([2.0])
    times, cpu_per_wall = [], []
    with torch.inference_mode():
        if args.warmup:
            model(latents, timesteps, motion)
        for repeat in range(args.repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            model(latents, timesteps, motion)
            times.append(time.perf_counter() - start)
            cpu_per_wall.append((time.process_time() - cpu_start) / times[-1])
            log(f"{name}: {repeat + 1}/{args.repeats} {times[-1]:.2f} s, CPU/wall {cpu_per_wall[-1]:.2f}")
    macs = sum(count_macs(config, grid).values())
    result = {
        "softmax_blocks": list(softmax_blocks),
        "block_pattern": config.block_pattern,
        "params": count_parameters(model),
        "build_s": build_s,
        "macs": macs,
        "median_s": statistics.median(times),
        "times_s": times,
        "cpu_per_wall": statistics.median(cpu_per_wall),
    }
    result["gflop_per_s"] = 2 * macs / result["median_s"] / 1e9
    del model
    gc.collect()
    return result


def format_table(results: dict, peak: dict[str, float]) -> str:
    hybrid = results["hybrid 14:2"]["median_s"]
    header = [
        "attention mix",
        "pattern",
        "median s",
        "vs hybrid",
        "GMAC",
        "GFLOP/s",
        "% mm",
        "% conv",
        "CPU/wall",
    ]
    rows = [
        [
            name,
            r["block_pattern"],
            f"{r['median_s']:.2f}",
            f"{r['median_s'] / hybrid:.2f}x",
            f"{r['macs'] / 1e9:.1f}",
            f"{r['gflop_per_s']:.1f}",
            f"{100 * r['gflop_per_s'] / peak['mm_2048']:.0f}%",
            f"{100 * r['gflop_per_s'] / peak['conv1x1_ffn']:.0f}%",
            f"{r['cpu_per_wall']:.2f}",
        ]
        for name, r in results.items()
    ]
    table = text_table(header, rows, left_columns=2)
    softmax, linear = results["all-softmax"]["median_s"], results["all-linear"]["median_s"]
    return "\n".join(
        [
            table,
            "",
            f"all-softmax / hybrid: {softmax / hybrid:.2f}x; hybrid / all-linear: {hybrid / linear:.2f}x",
            f"fp32 reference: torch.mm 2048^2 {peak['mm_2048']:.1f} GFLOP/s (the '% mm' column), "
            f"FFN 1x1 conv 1152->5760 {peak['conv1x1_ffn']:.1f} GFLOP/s ('% conv')",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    grid = PRESET.latent_grid
    log(f"paper denoiser at {grid.tokens} tokens, {args.repeats} repeats, {args.threads} threads")
    repeats = 5 if args.quick else 10
    before = reference_rates(repeats)
    log(f"fp32 reference GFLOP/s: {before}")
    results = {name: time_mix(name, blocks, args) for name, blocks in MIXES.items()}
    after = reference_rates(repeats)
    log(f"fp32 reference GFLOP/s after the models: {after}")
    # Measured before and after; the higher is what the machine does when nothing else runs on it.
    peak = {kernel: max(before[kernel], after[kernel]) for kernel in before}
    softmax, hybrid, linear = (results[name]["median_s"] for name in MIXES)
    report = {
        "settings": {
            "preset": PRESET.name,
            "latent_shape": [PRESET.denoiser.latent_channels, grid.frames, grid.height, grid.width],
            "tokens": grid.tokens,
            "batch": 1,
            "dtype": "float32",
            "threads": args.threads,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "quick": args.quick,
        },
        "machine": machine_info(
            torch=torch.__version__, load_average_before=load_before, load_average_after=os.getloadavg()
        ),
        "reference_gflop_per_s": peak,
        "reference_gflop_per_s_before_and_after": [before, after],
        "results": results,
        "ratios": {
            "all_softmax_over_hybrid": softmax / hybrid,
            "hybrid_over_all_linear": hybrid / linear,
        },
    }
    atomic_write_bytes(args.output, (json.dumps(report, indent=2) + "\n").encode())
    print()
    print(format_table(results, peak))
    print(f"\nload average (1 min) before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
