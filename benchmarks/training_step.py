"""Benchmark of the teacher's training step: throughput, memory and model FLOPs utilisation.

One optimiser step of the teacher as the pipeline trains it (rectified flow on a preset's latent grid with
the first frame pinned, AdamW, gradient clipping), at several batch sizes, with and without gradient
checkpointing and torch.compile, under bf16 autocast (`--dtype`). For each configuration it reports the median
step time over `--steps` timed steps after warm-up steps (torch.compile's compilation happens there), the
tokens per second (batch x the grid's tokens / step time), peak memory (the GPU's allocator peak; on a CPU
the rise of this process's peak resident memory, which only grows, so later rows show at least the earlier
peaks) and the model FLOPs utilisation: 3 x 2 x the forward's analytic multiply-accumulates per example
(models/model_card.py; backward counted as twice the forward, recomputation by checkpointing not counted, as
MFU is defined) x batch / step time, over the device's dense bf16 peak (a table of NVIDIA GPUs, or
`--peak-tflops`). A configuration that runs out of GPU memory is reported as such and the others go on.

It runs on whatever device torch sees: a GPU when there is one, else the CPU (with the tiny preset unless
`--preset` says otherwise; torch.compile's C++ compilation there takes minutes). Nothing is asserted; a test
runs it on the CPU at the tiny preset.

Run from the repository root:

    python benchmarks/training_step.py            # paper preset on a GPU (tiny on a CPU), batches 1 2 4 8
    python benchmarks/training_step.py --quick    # 1 warm-up, 2 timed steps

It prints a table and writes JSON to benchmarks/results/training_step.json (training_step_quick.json with
--quick).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import resource
import statistics
import time
from pathlib import Path

import torch
from report import log, machine_info, text_table

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.models.config import get_preset
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.flow import flow_matching_loss, logit_normal_timesteps
from mobilei2v_pipeline.models.model_card import count_macs

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity), from NVIDIA's data sheets, by a name fragment
# torch.cuda.get_device_name gives; the first match wins.
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,  # SXM
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "RTX 4090": 165.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", default=None, help="model preset (default: paper on a GPU, tiny on a CPU)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16", help="autocast dtype")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 2 timed steps")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 2, 1
    if args.output is None:
        args.output = RESULTS_DIR / ("training_step_quick.json" if args.quick else "training_step.json")
    return args


def device_peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in BF16_PEAK_TFLOPS.items() if fragment in name), None)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_configuration(
    preset: str,
    batch: int,
    checkpointing: bool,
    compiled: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> dict:
    """Median step time and peak memory of one configuration (or why it could not run)."""
    spec = get_preset(preset)
    config, grid = spec.denoiser, spec.latent_grid
    torch.manual_seed(0)
    model = MobileI2VDenoiser(config, gradient_checkpointing=checkpointing).to(device).train()
    step_model = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    shape = (batch, config.latent_channels, grid.frames, grid.height, grid.width)
    generator = torch.Generator().manual_seed(0)
    x0, noise = (torch.randn(shape, generator=generator).to(device) for _ in range(2))
    motion = torch.full((batch,), 2.0, device=device)
    rss_before = _peak_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> float:
        _synchronize(device)
        start = time.perf_counter()
        t = logit_normal_timesteps(batch, generator).to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=args.dtype != "fp32"):
            loss = flow_matching_loss(step_model, x0, noise, t, motion)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _synchronize(device)
        return time.perf_counter() - start

    row = {"batch": batch, "checkpointing": checkpointing, "compiled": compiled, "tokens": grid.tokens}
    try:
        warm = [step() for _ in range(args.warmup)]
        times = [step() for _ in range(args.steps)]
    except torch.cuda.OutOfMemoryError:
        row["status"] = "out of memory"
    else:
        row |= {"status": "ok", "warmup_s": sum(warm), "step_s": statistics.median(times), "times_s": times}
        row["tokens_per_s"] = batch * grid.tokens / row["step_s"]
        macs = sum(count_macs(config, grid).values())
        row["model_tflop_per_s"] = 3 * 2 * macs * batch / row["step_s"] / 1e12
        if device.type == "cuda":
            row["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        else:
            row["peak_memory_mb"] = max(_peak_rss_mb() - rss_before, 0.0)
    return row


def _release(device: torch.device) -> None:
    """Free what the last configuration held before the next one is measured."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def format_table(rows: list[dict], peak: float | None) -> str:
    header = ["batch", "checkpointing", "compile", "step s", "tokens/s", "peak MB", "TFLOP/s", "MFU"]
    lines = []
    for r in rows:
        if r["status"] != "ok":
            lines.append(
                [str(r["batch"]), str(r["checkpointing"]), str(r["compiled"]), r["status"], "", "", "", ""]
            )
            continue
        mfu = f"{100 * r['model_tflop_per_s'] / peak:.1f}%" if peak else "n/a"
        lines.append(
            [
                str(r["batch"]),
                str(r["checkpointing"]),
                str(r["compiled"]),
                f"{r['step_s']:.3f}",
                f"{r['tokens_per_s']:.0f}",
                f"{r['peak_memory_mb']:.0f}",
                f"{r['model_tflop_per_s']:.2f}",
                mfu,
            ]
        )
    return text_table(header, lines, left_columns=3)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.preset = args.preset or ("paper" if device.type == "cuda" else "tiny")
    peak = device_peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"{args.preset} teacher training step on {name} ({args.dtype}), bf16 peak {peak} TFLOP/s")
    compile_options = [False] if args.no_compile else [False, True]
    rows = []
    for batch, checkpointing, compiled in itertools.product(args.batch_sizes, [False, True], compile_options):
        rows.append(time_configuration(args.preset, batch, checkpointing, compiled, args, device))
        _release(device)
        outcome = f"{rows[-1]['step_s']:.3f} s per step" if rows[-1]["status"] == "ok" else rows[-1]["status"]
        log(f"batch {batch}, checkpointing {checkpointing}, compile {compiled}: {outcome}")
    for row in rows:
        if peak and row["status"] == "ok":
            row["mfu"] = row["model_tflop_per_s"] / peak
    report = {
        "settings": {
            "preset": args.preset,
            "dtype": args.dtype,
            "steps": args.steps,
            "warmup": args.warmup,
            "device": name,
            "peak_tflops": peak,
            "quick": args.quick,
        },
        "machine": machine_info(torch=torch.__version__, cuda=torch.version.cuda),
        "rows": rows,
    }
    table = format_table(rows, peak)
    print(table)
    atomic_write_bytes(args.output, json.dumps(report, indent=2).encode())
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
