"""Benchmark of the mobile attention forms in ONNX Runtime on this CPU: training form vs mobile form.

Per layer (one linear and one softmax attention at the paper's width, hidden 1152, 16 heads, on the paper's
2760 tokens) and for the whole paper-preset denoiser (264.9M parameters, latent 128 x 3 x 23 x 40), each
form exported to static-shape ONNX (opset 18, dynamo exporter) with the same random weights, then timed
in ONNX Runtime (CPU, all threads): median of the timed runs after warm-up, and the mobile/training ratio
(above 1: the mobile form is faster). The max abs difference of the two outputs is reported beside.

The mobile forms are made for phone runtimes (channels-first 1x1 convolutions, heads as a view, batched
matmuls, no einsum or split); this table says what they cost or save where ONNX Runtime's CPU kernels run
them.
The full run also lowers the whole mobile denoiser to ExecuTorch (XNNPACK) as the export stage does, and to an
8-bit program as the quantization stage does (PT2E, XNNPACK's quantizer, calibrated on 4 flow-path inputs,
the modulation projections of conf/base/parameters_quantization.yml quantized at run time),
and times both the same way, with their sizes, the share of their multiply-accumulates inside the delegate
and the 8-bit output's PSNR against fp32.

    python benchmarks/mobile_attention.py          # layers, the whole denoiser, ExecuTorch: about 10 minutes
    python benchmarks/mobile_attention.py --quick  # layers only, 3 runs

It prints a table and writes JSON to benchmarks/results/mobile_attention.json (_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import numpy as np
import onnx
import torch
from report import RESULTS_DIR, log, machine_info, quantization_settings, text_table

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.models.attention import LinearAttention, SoftmaxAttention
from mobilei2v_pipeline.models.config import PRESETS
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.mobile_attention import MobileLinearAttention, MobileSoftmaxAttention
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser
from mobilei2v_pipeline.models.rope import rope_tables
from mobilei2v_pipeline.pipelines.export.nodes import to_onnx
from mobilei2v_pipeline.pipelines.profiling.onnxruntime import operator_times
from mobilei2v_pipeline.psnr import psnr_db

PRESET = PRESETS["paper"]
CONFIG, GRID = PRESET.denoiser, PRESET.latent_grid


class _TrainingLayer(torch.nn.Module):
    """A training-form attention with its RoPE tables as constants, tokens (1, N, C) in and out."""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer
        cos, sin = rope_tables(GRID, CONFIG.head_dim, CONFIG.rope_theta, CONFIG.rope_position_scale(GRID))
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, self.cos, self.sin)


class _MobileLayer(torch.nn.Module):
    """The mobile form, channels-first (1, C, 1, N) in and out."""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer.forward_4d(x)


def _time(model, inputs: dict[str, np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    session = onnx_runtime.session(model)
    times = onnx_runtime.time_runs(session, inputs, repeats, warmup=1)
    return float(np.median(times)), onnx_runtime.run(session, inputs)


def _compare(name: str, training, training_inputs, mobile, mobile_inputs, to_tokens, repeats) -> dict:
    log(f"{name}: exporting the training form")
    training_ms, expected = _time(to_onnx(training, training_inputs, ["out"], 18), training_inputs, repeats)
    log(f"{name}: exporting the mobile form")
    mobile_ms, got = _time(to_onnx(mobile, mobile_inputs, ["out"], 18), mobile_inputs, repeats)
    row = {
        "case": name,
        "training_ms": training_ms,
        "mobile_ms": mobile_ms,
        "speedup": training_ms / mobile_ms,
        "max_abs_err": float(np.abs(to_tokens(got) - expected).max()),
    }
    log(f"{name}: training {training_ms:.1f} ms, mobile {mobile_ms:.1f} ms")
    return row


@torch.no_grad()
def layer_rows(repeats: int) -> list[dict]:
    rows = []
    x = np.random.default_rng(0).standard_normal((1, GRID.tokens, CONFIG.hidden_size)).astype(np.float32)
    for name, training, mobile in (
        ("linear attention layer", LinearAttention, MobileLinearAttention),
        ("softmax attention layer", SoftmaxAttention, MobileSoftmaxAttention),
    ):
        torch.manual_seed(0)
        layer = training(CONFIG.hidden_size, CONFIG.num_heads).eval()
        mobile_layer = mobile(layer, GRID, CONFIG)
        rows.append(
            _compare(
                name,
                _TrainingLayer(layer).eval(),
                {"x": x},
                _MobileLayer(mobile_layer).eval(),
                {"x": np.ascontiguousarray(x.transpose(0, 2, 1)[:, :, None])},
                lambda y: y[:, :, 0].transpose(0, 2, 1),
                repeats,
            )
        )
    return rows


def _top_operators(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """ONNX Runtime's kernel time per run by operator type (its profiler, 2 runs), the 8 largest."""
    table = operator_times(model, inputs, threads=0, runs=2)
    return dict(zip(table["op_type"][:8], table["ms"][:8], strict=True))


@torch.no_grad()
def denoiser_row(repeats: int) -> dict:
    torch.manual_seed(0)
    model = MobileI2VDenoiser(CONFIG).eval()
    torch.nn.init.normal_(model.final_layer.linear.weight, std=0.5)
    rng = np.random.default_rng(0)
    inputs = {
        "latents": rng.standard_normal(
            (1, CONFIG.latent_channels, GRID.frames, GRID.height, GRID.width)
        ).astype(np.float32),
        "timesteps": np.array([[0.0] + [0.7] * (GRID.frames - 1)], dtype=np.float32),
        "motion": np.array([2.0], dtype=np.float32),
    }
    training = to_onnx(model, inputs, ["out"], 18)
    log("whole denoiser: exported the training form")
    training_ms, expected = _time(training, inputs, repeats)
    training_ops = _top_operators(training, inputs)
    del training
    gc.collect()
    mobile_form = MobileDenoiser(model, GRID).eval()
    mobile = to_onnx(mobile_form, inputs, ["out"], 18)
    log("whole denoiser: exported the mobile form")
    mobile_ms, got = _time(mobile, inputs, repeats)
    mobile_ops = _top_operators(mobile, inputs)
    del mobile
    gc.collect()
    return {
        "case": "whole paper denoiser",
        "training_ms": training_ms,
        "mobile_ms": mobile_ms,
        "speedup": training_ms / mobile_ms,
        "max_abs_err": float(np.abs(got - expected).max()),
        "training_operators_ms": training_ops,
        "mobile_operators_ms": mobile_ops,
        **_executorch(mobile_form, inputs, expected, repeats),
    }


def _executorch(
    graph: torch.nn.Module, inputs: dict[str, np.ndarray], expected: np.ndarray, repeats: int
) -> dict:
    """The mobile form as the export stage makes its ExecuTorch program (XNNPACK) and as the quantization
    stage makes the 8-bit one (calibrated on flow-path inputs), each timed the same way."""
    from quantization import flow_inputs

    from mobilei2v_pipeline import executorch_runtime  # ExecuTorch takes 5 s to import

    started = time.perf_counter()
    lowered = executorch_runtime.lower(graph, inputs)
    row = {"executorch_lowering_s": time.perf_counter() - started}
    row |= {f"executorch_{k}": v for k, v in executorch_runtime.delegation(lowered).items()}
    programs = {"fp32": executorch_runtime.to_executorch(lowered)}
    del lowered
    calibration = flow_inputs(GRID, 4, seed=0, config=CONFIG)
    started = time.perf_counter()
    settings = quantization_settings()
    lowered = executorch_runtime.lower_8bit(
        graph,
        (onnx_runtime.sample(calibration, i) for i in range(4)),
        ["latents"],
        dynamic_modules=settings["executorch_dynamic_modules"],
    )
    row["executorch_w8a8_lowering_s"] = time.perf_counter() - started
    row |= {f"executorch_w8a8_{k}": v for k, v in executorch_runtime.delegation(lowered).items()}
    programs["w8a8"] = executorch_runtime.to_executorch(lowered)
    del lowered
    gc.collect()
    outputs = {}
    for precision, program in programs.items():
        method = executorch_runtime.load(program)
        outputs[precision] = executorch_runtime.run(method, inputs)
        prefix = "executorch" if precision == "fp32" else "executorch_w8a8"
        row[f"{prefix}_ms"] = executorch_runtime.median_ms(method, inputs, repeats)
        row[f"{prefix}_size_mb"] = size = len(program) / 2**20
        log(f"whole denoiser: ExecuTorch {precision} {row[f'{prefix}_ms']:.1f} ms, {size:.1f} MB")
    row["executorch_max_abs_err"] = float(np.abs(outputs["fp32"] - expected).max())
    row["executorch_w8a8_psnr_db"] = psnr_db(outputs["w8a8"], outputs["fp32"])
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per form (default 5)")
    parser.add_argument("--quick", action="store_true", help="layers only, 3 runs")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    rows = layer_rows(repeats)
    if not args.quick:
        rows.append(denoiser_row(repeats))
    if not args.quick:
        row = rows[-1]
        print(
            f"ExecuTorch (XNNPACK), whole paper denoiser: {row['executorch_ms']:.1f} ms "
            f"({row['executorch_ms'] / row['mobile_ms']:.2f}x ONNX Runtime's mobile form), "
            f"{row['executorch_size_mb']:.1f} MB, {row['executorch_delegated_mac_fraction']:.4f} of MACs "
            f"delegated, max abs err {row['executorch_max_abs_err']:.1e}; left to the portable kernels: "
            f"{row['executorch_non_delegated_ops'] or 'nothing'}\n"
            f"ExecuTorch 8-bit: {row['executorch_w8a8_ms']:.1f} ms "
            f"({row['executorch_ms'] / row['executorch_w8a8_ms']:.2f}x faster than fp32), "
            f"{row['executorch_w8a8_size_mb']:.1f} MB "
            f"({row['executorch_w8a8_size_mb'] / row['executorch_size_mb']:.2f}x), PSNR vs fp32 "
            f"{row['executorch_w8a8_psnr_db']:.1f} dB, {row['executorch_w8a8_delegated_mac_fraction']:.4f} "
            f"of MACs delegated, lowered in {row['executorch_w8a8_lowering_s']:.0f} s; left outside: "
            f"{row['executorch_w8a8_non_delegated_ops'] or 'nothing'}"
        )
    if not args.quick:
        for form in ("training", "mobile"):
            top = ", ".join(f"{op} {ms:.0f}" for op, ms in rows[-1][f"{form}_operators_ms"].items())
            print(f"ONNX Runtime, whole paper denoiser, {form} form, ms per run by operator: {top}")
    print(
        text_table(
            ["case", "training ms", "mobile ms", "mobile speed-up", "max abs err"],
            [
                [
                    r["case"],
                    f"{r['training_ms']:.1f}",
                    f"{r['mobile_ms']:.1f}",
                    f"{r['speedup']:.2f}x",
                    f"{r['max_abs_err']:.1e}",
                ]
                for r in rows
            ],
        )
    )
    report = {
        "tokens": GRID.tokens,
        "repeats": repeats,
        "rows": rows,
        "machine": machine_info(torch=torch.__version__, onnxruntime=__import__("onnxruntime").__version__),
    }
    name = "mobile_attention_quick.json" if args.quick else "mobile_attention.json"
    atomic_write_bytes(RESULTS_DIR / name, json.dumps(report, indent=2).encode())


if __name__ == "__main__":
    main()
