"""Benchmark of the paper preset's per-frame latency in ONNX Runtime on this CPU: the app's graphs at 720p.

One 17-frame 720x1280 video at one step is: the light first-frame encoder, the mobile-form denoiser once
(264.9M parameters, latent 128 x 3 x 23 x 40 = 2760 tokens), the light decoder (the paper preset's widths
96/64/48/32). Each graph is exported to fp32 ONNX (random weights: latency does not depend on them) and timed
in ONNX Runtime (median of the timed runs after a warm-up); the per-frame latency is
(encoder + steps x denoiser + decoder) / 17, and the same without the encoder (profiling.json's definition).

The LTX-Video VAE's own decoder (7.34 TMAC for 17 x 720p) is not timed: its weights are not here and its
activations at 720p take most of this machine's memory.

    python benchmarks/per_frame.py            # about 5 minutes on 2 cores
    python benchmarks/per_frame.py --quick    # 1 timed run per graph

It prints a table and writes JSON to benchmarks/results/per_frame.json (_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from report import log, machine_info, text_table

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.models.config import PRESETS
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.light_autoencoder import LightAutoencoder, LightAutoencoderConfig
from mobilei2v_pipeline.pipelines.export.graphs import export_graphs
from mobilei2v_pipeline.pipelines.export.nodes import to_onnx

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PRESET = PRESETS["paper"]
CONFIG, GRID = PRESET.denoiser, PRESET.latent_grid
LIGHT_WIDTHS = (96, 64, 48, 32)  # conf/paper/parameters_autoencoder.yml


def _time(model, inputs: dict[str, np.ndarray], repeats: int) -> float:
    session = onnx_runtime.session(model)
    return float(np.median(onnx_runtime.time_runs(session, inputs, repeats, warmup=1)))


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per graph (default 3)")
    parser.add_argument("--steps", type=int, default=1, help="denoiser calls per video (default 1)")
    parser.add_argument("--quick", action="store_true", help="1 timed run per graph")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    torch.manual_seed(0)
    channels = CONFIG.latent_channels
    light = LightAutoencoder(
        LightAutoencoderConfig(
            channels, PRESET.spatial_compression, PRESET.temporal_compression, LIGHT_WIDTHS
        )
    )
    stats = {"mean": [0.0] * channels, "std": [1.0] * channels}
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((1, channels, GRID.frames, GRID.height, GRID.width)).astype(np.float32)
    inputs = {
        "light_encoder": {"image": rng.uniform(-1, 1, (1, 3, PRESET.video_height, PRESET.video_width))},
        "denoiser": {
            "latents": latents,
            "timesteps": np.array([[0.0] + [1.0] * (GRID.frames - 1)], dtype=np.float32),
            "motion": np.array([2.0], dtype=np.float32),
        },
        "light_decoder": {"latents": latents},
    }
    inputs["light_encoder"]["image"] = inputs["light_encoder"]["image"].astype(np.float32)
    graphs = export_graphs(
        MobileI2VDenoiser(CONFIG).eval(), None, light, stats, GRID, PRESET.video_height, PRESET.video_width
    )
    times = {}
    for name in ("light_encoder", "denoiser", "light_decoder"):
        log(f"exporting and timing {name}")
        times[name] = _time(to_onnx(graphs[name], inputs[name], ["out"], 18), inputs[name], repeats)
        log(f"{name}: {times[name]:.1f} ms")
    frames = PRESET.video_frames
    video = times["light_encoder"] + args.steps * times["denoiser"] + times["light_decoder"]
    per_frame = (args.steps * times["denoiser"] + times["light_decoder"]) / frames
    rows = [[name, f"{ms:.1f}"] for name, ms in times.items()]
    rows += [
        [f"video, {args.steps} step(s), {frames} frames", f"{video:.1f}"],
        ["per frame, with the encoder", f"{video / frames:.1f}"],
        ["per frame (steps x denoiser + decoder) / frames", f"{per_frame:.1f}"],
    ]
    print(text_table(["graph (fp32, ONNX Runtime)", "ms"], rows))
    report = {
        "steps": args.steps,
        "frames": frames,
        "tokens": GRID.tokens,
        "repeats": repeats,
        "graph_ms": times,
        "video_ms": video,
        "per_frame_latency_ms": per_frame,
        "per_frame_with_encoder_ms": video / frames,
        "machine": machine_info(torch=torch.__version__, onnxruntime=__import__("onnxruntime").__version__),
    }
    name = "per_frame_quick.json" if args.quick else "per_frame.json"
    atomic_write_bytes(RESULTS_DIR / name, json.dumps(report, indent=2).encode())


if __name__ == "__main__":
    main()
