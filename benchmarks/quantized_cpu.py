"""Benchmark of quantized forms of the denoiser in ONNX Runtime's CPU provider (why W8A8 can lose to fp32).

The `base` run's denoiser (the `tiny` preset at its own 336-token grid, random weights with a live output
layer) exported as the export stage does, quantized by the quantization stage's own code (same calibration,
ops and modules kept in float), in the forms an engineer would try on a CPU:

- `qdq`: the pipeline's W8A8 (QDQ, per-channel weights): what QNN and AI Hub take;
- `qdq, optimisation capped at extended`: the same graph, without ONNX Runtime's NHWC layout transformer (it
  wraps every quantized convolution of a channels-first graph in transposes);
- `qdq, conv and matmul only`: only the products quantized, every elementwise op float (fewer Q/DQ pairs);
- `qoperator`: QLinearConv / QLinearMatMul operators instead of Q/DQ pairs;
- `dynamic`: int8 weights, activations quantized per run by ONNX Runtime (no calibration).

Each is timed in one process, one after another (median of the timed runs, all cores), with its output's PSNR
against fp32 on held-out inputs and its operator time by type from ONNX Runtime's profiler.

    python benchmarks/quantized_cpu.py            # about 3 minutes on 2 cores
    python benchmarks/quantized_cpu.py --preset paper --repeats 5

It prints a table and writes JSON to benchmarks/results/quantized_cpu_<preset>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime import quantization as ort_quant
from quantization import flow_inputs
from report import RESULTS_DIR, log, machine_info, quantization_settings, text_table

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.models.config import PRESETS
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser
from mobilei2v_pipeline.pipelines.export.nodes import to_onnx
from mobilei2v_pipeline.pipelines.profiling.onnxruntime import operator_times
from mobilei2v_pipeline.pipelines.quantization.nodes import quantize_models
from mobilei2v_pipeline.psnr import psnr_db


def _top_operators(graph: onnx.ModelProto, feed: dict[str, np.ndarray]) -> dict[str, float]:
    table = operator_times(graph, feed, threads=0, runs=5)
    return dict(zip(table["op_type"][:6], table["ms"][:6], strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--calibration", type=int, default=8, help="calibration inputs (default 8)")
    parser.add_argument("--held-out", type=int, default=4, help="scoring inputs (default 4)")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per form (default 50)")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    config, grid = preset.denoiser, preset.latent_grid
    settings = quantization_settings()

    torch.manual_seed(0)
    model = MobileI2VDenoiser(config).eval()
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.02)
    calibration = flow_inputs(grid, args.calibration, seed=0, config=config)
    held_out = flow_inputs(grid, args.held_out, seed=1, config=config)
    with torch.no_grad():
        first = {k: v[:1] for k, v in calibration.items()}
        fp32 = to_onnx(MobileDenoiser(model, grid).eval(), first, ["y"], 18)
    log(f"exported the {args.preset} denoiser at {grid.tokens} tokens: {len(fp32.graph.node)} nodes")

    inputs = {**calibration, "held_out": np.zeros(args.calibration, dtype=bool)}
    w8a8 = settings["precisions"]["w8a8"]
    precisions = {"qdq": w8a8, "qoperator": {**w8a8, "format": "QOperator"}}
    quantized = quantize_models({"denoiser": lambda: fp32}, inputs, settings | {"precisions": precisions})
    products = {"Conv", "MatMul", "Gemm"}
    only_products = settings | {
        "precisions": {"qdq": w8a8},
        "keep_float_ops": sorted({n.op_type for n in fp32.graph.node} - products),
    }
    quantized["products/denoiser"] = quantize_models({"denoiser": lambda: fp32}, inputs, only_products)[
        "qdq/denoiser"
    ]
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(fp32, f"{tmp}/fp32.onnx")
        # as the static path does: folds the weight slices the export form computes from initializers
        ort_quant.quant_pre_process(f"{tmp}/fp32.onnx", f"{tmp}/prepared.onnx", skip_symbolic_shape=True)
        weights = ort_quant.QuantType.QInt8
        ort_quant.quantize_dynamic(f"{tmp}/prepared.onnx", f"{tmp}/dynamic.onnx", weight_type=weights)
        dynamic = onnx.load(f"{tmp}/dynamic.onnx")

    full, extended = ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    forms = {
        "fp32": (fp32, full),
        "qdq (the pipeline's W8A8)": (quantized["qdq/denoiser"], full),
        "qdq, optimisation capped at extended": (quantized["qdq/denoiser"], extended),
        "qdq, conv and matmul only": (quantized["products/denoiser"], full),
        "qoperator": (quantized["qoperator/denoiser"], full),
        "dynamic (int8 weights)": (dynamic, full),
    }
    rows, reference = [], None
    feed = {k: v[:1] for k, v in held_out.items()}
    for name, (graph, level) in forms.items():
        session = onnx_runtime.session(graph, optimization=level)
        outputs = np.concatenate(
            [
                session.run(None, {k: v[i : i + 1] for k, v in held_out.items()})[0]
                for i in range(args.held_out)
            ]
        )
        reference = outputs if reference is None else reference
        for _ in range(3):
            session.run(None, feed)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            session.run(None, feed)
            times.append(1000 * (time.perf_counter() - started))
        rows.append(
            {
                "form": name,
                "median_ms": float(np.median(times)),
                "psnr_db": None if name == "fp32" else psnr_db(outputs, reference),
                "size_mb": graph.ByteSize() / 2**20,
                "nodes": len(graph.graph.node),
                # by operator type, at ONNX Runtime's default optimisation (the profiler's session)
                "op_ms": _top_operators(graph, feed) if level == full else {},
            }
        )
        log(f"{name}: {rows[-1]['median_ms']:.2f} ms")
    for row in rows:
        row["speedup"] = rows[0]["median_ms"] / row["median_ms"]
    print(
        text_table(
            ["form", "median ms", "vs fp32", "PSNR vs fp32 dB", "MB", "nodes", "top operators (ms per run)"],
            [
                [
                    r["form"],
                    f"{r['median_ms']:.2f}",
                    f"{r['speedup']:.2f}x",
                    "ref" if r["psnr_db"] is None else f"{r['psnr_db']:.1f}",
                    f"{r['size_mb']:.1f}",
                    str(r["nodes"]),
                    ", ".join(f"{op} {ms:.2f}" for op, ms in list(r["op_ms"].items())[:4]),
                ]
                for r in rows
            ],
        )
    )
    report = {
        "preset": args.preset,
        "tokens": grid.tokens,
        "repeats": args.repeats,
        "rows": rows,
        "machine": machine_info(torch=torch.__version__, onnxruntime=ort.__version__),
    }
    output = RESULTS_DIR / f"quantized_cpu_{args.preset}.json"
    atomic_write_bytes(output, json.dumps(report, indent=2).encode())


if __name__ == "__main__":
    main()
