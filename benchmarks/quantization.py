"""Benchmark of static quantization at the paper preset: W8A8 and W8A16 QDQ vs fp32 in ONNX Runtime.

The paper-preset denoiser (264.9M parameters, random weights: no trained paper-size model exists here) in
its mobile form, exported to ONNX and quantized by the quantization pipeline's own function (ONNX Runtime's
static QDQ quantizer, the ops of conf/base/parameters_quantization.yml kept in float), calibrated on
`--calibration` inputs along the flow path (noise mixed with a random "clean" latent at t in (0, 1]) and
scored on held-out ones: output PSNR against fp32, size, ONNX Runtime CPU latency (median of the timed runs)
and the ratios against fp32.

The latent grid is the paper's, 3 x 23 x 40 (2760 tokens): the pipeline's MinMax calibration observes the
activations a group at a time (pipelines/quantization/calibration.py), where ONNX Runtime's calibrator would
keep them all (over 20 GB). It also reports the seconds the calibration and each precision's quantization took
and the process's peak resident memory. `--grid 3 6 10` is a quick smaller run.

    python benchmarks/quantization.py            # about 15 minutes on 2 cores
    python benchmarks/quantization.py --quick    # 2 calibration inputs, 2 held out, 3 timed runs

It prints a table and writes JSON to benchmarks/results/quantization.json (_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import resource
import time
from collections.abc import Iterator

import numpy as np
import torch
from report import RESULTS_DIR, log, machine_info, quantization_settings, text_table

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.models.config import PRESETS, DenoiserConfig, LatentGrid
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser
from mobilei2v_pipeline.pipelines.export.nodes import to_onnx
from mobilei2v_pipeline.pipelines.quantization.nodes import quantize_models
from mobilei2v_pipeline.psnr import psnr_db

CONFIG = PRESETS["paper"].denoiser


def flow_inputs(
    grid: LatentGrid, count: int, seed: int, config: DenoiserConfig = CONFIG
) -> dict[str, np.ndarray]:
    """Denoiser inputs along the flow path: x_t = (1 - t) x0 + t noise with frame 0 clean."""
    rng = np.random.default_rng(seed)
    shape = (count, config.latent_channels, grid.frames, grid.height, grid.width)
    clean, noise = rng.standard_normal(shape), rng.standard_normal(shape)
    t = rng.uniform(0.05, 1.0, count)
    latents = (1 - t[:, None, None, None, None]) * clean + t[:, None, None, None, None] * noise
    latents[:, :, 0] = clean[:, :, 0]
    timesteps = np.repeat(t[:, None], grid.frames, axis=1)
    timesteps[:, 0] = 0
    return {
        "latents": latents.astype(np.float32),
        "timesteps": timesteps.astype(np.float32),
        "motion": rng.uniform(0.5, 16, count).astype(np.float32),
    }


@contextlib.contextmanager
def _logged_seconds() -> Iterator[dict[str, float]]:
    """The seconds the quantization node logs for its calibration and for each precision."""
    seconds: dict[str, float] = {}

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = re.match(r"(Calibrated|Quantized) \S+(?: to (\S+))? in ([\d.]+) s", record.getMessage())
            if found:
                seconds[found.group(2) or "calibration"] = float(found.group(3))

    handler = Collect()
    logger = logging.getLogger("mobilei2v_pipeline.pipelines.quantization.nodes")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield seconds
    finally:
        logger.removeHandler(handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, nargs=3, default=[3, 23, 40], help="latent frames height width")
    parser.add_argument("--calibration", type=int, default=4, help="calibration inputs (default 4)")
    parser.add_argument("--held-out", type=int, default=4, help="scoring inputs (default 4)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per precision (default 10)")
    parser.add_argument("--quick", action="store_true", help="2 calibration inputs, 3 timed runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.calibration, args.held_out, args.repeats = 2, 2, 3
    grid = LatentGrid(*args.grid)
    settings = quantization_settings()

    torch.manual_seed(0)
    model = MobileI2VDenoiser(CONFIG).eval()
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.02)
    calibration = flow_inputs(grid, args.calibration, seed=0)
    held_out = flow_inputs(grid, args.held_out, seed=1)
    log(f"exporting the paper denoiser at {grid.tokens} tokens")
    with torch.no_grad():
        fp32 = to_onnx(
            MobileDenoiser(model, grid).eval(), {k: v[:1] for k, v in calibration.items()}, ["velocity"], 18
        )
    del model
    log("quantizing")
    inputs = {**calibration, "held_out": np.zeros(args.calibration, dtype=bool)}
    started = time.perf_counter()
    with _logged_seconds() as seconds:
        quantized = quantize_models({"denoiser": lambda: fp32}, inputs, settings)
    quantize_s = time.perf_counter() - started
    models = {"fp32": fp32} | {key.split("/")[0]: model for key, model in quantized.items()}

    rows, reference = [], None
    for precision, onnx_model in models.items():
        session = onnx_runtime.session(onnx_model)
        outputs = onnx_runtime.run_all(session, held_out)
        reference = outputs if reference is None else reference
        times = onnx_runtime.time_runs(session, onnx_runtime.sample(held_out, 0), args.repeats, warmup=1)
        rows.append(
            {
                "precision": precision,
                "size_mb": onnx_runtime.size_mb(onnx_model),
                "latency_ms": float(np.median(times)),
                "psnr_db": psnr_db(outputs, reference) if precision != "fp32" else None,
            }
        )
        log(f"{precision}: {rows[-1]['latency_ms']:.1f} ms, {rows[-1]['size_mb']:.1f} MB")
    for row in rows:
        row["size_ratio"] = row["size_mb"] / rows[0]["size_mb"]
        row["speedup"] = rows[0]["latency_ms"] / row["latency_ms"]
    print(
        text_table(
            ["precision", "size MB", "size ratio", "ORT ms", "speed-up vs fp32", "PSNR vs fp32 dB"],
            [
                [
                    r["precision"],
                    f"{r['size_mb']:.1f}",
                    f"{r['size_ratio']:.3f}",
                    f"{r['latency_ms']:.1f}",
                    f"{r['speedup']:.2f}x",
                    "ref" if r["psnr_db"] is None else f"{r['psnr_db']:.2f}",
                ]
                for r in rows
            ],
        )
    )
    report = {
        "grid": args.grid,
        "tokens": grid.tokens,
        "calibration_inputs": args.calibration,
        "held_out_inputs": args.held_out,
        "repeats": args.repeats,
        "keep_float_ops": settings["keep_float_ops"],
        "calibration_budget_mb": settings["calibration_budget_mb"],
        "quantize_s": quantize_s,
        "step_s": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
        "machine": machine_info(torch=torch.__version__, onnxruntime=__import__("onnxruntime").__version__),
    }
    log(f"calibration and quantization {quantize_s:.0f} s ({seconds}); peak {report['peak_rss_mb']:.0f} MB")
    name = "quantization_quick.json" if args.quick else "quantization.json"
    atomic_write_bytes(RESULTS_DIR / name, json.dumps(report, indent=2).encode())


if __name__ == "__main__":
    main()
