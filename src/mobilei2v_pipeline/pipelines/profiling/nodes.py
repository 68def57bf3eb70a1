"""Nodes of the profiling pipeline: every exported graph in ONNX Runtime on this machine, and the configured
ones on Snapdragon devices through Qualcomm AI Hub when a token is configured."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
from matplotlib.figure import Figure

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.figures import flat_figures
from mobilei2v_pipeline.pipelines.profiling import ai_hub
from mobilei2v_pipeline.pipelines.profiling.onnxruntime import profile_graph
from mobilei2v_pipeline.text import slug

logger = logging.getLogger(__name__)


def profile_onnxruntime(
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    quantized_models: dict[str, Callable[[], onnx.ModelProto]],
    export_samples: dict[str, dict[str, np.ndarray]],
    onnxruntime: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Per precision and graph, on the first export sample: latency (median, p90), peak memory; the
    operators the time goes to (top `top_operators` of each); each graph's outputs on every sample (what
    AI Hub's inference jobs are compared with)."""
    rows, operators, outputs = [], [], {}
    for key, load in sorted(onnx_runtime.by_precision(onnx_models, quantized_models).items()):
        precision, graph = key.split("/")
        figures, ops, outputs.setdefault(precision, {})[graph] = profile_graph(
            load(), export_samples[graph], onnxruntime
        )
        rows.append({"precision": precision, "graph": graph, **figures})
        operators.append(ops.head(onnxruntime["top_operators"]).assign(precision=precision, graph=graph))
        logger.info("ONNX Runtime %s %s: median %.2f ms", precision, graph, figures["median_ms"])
    return pd.DataFrame(rows), pd.concat(operators, ignore_index=True), outputs


def profile_ai_hub(
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    quantized_models: dict[str, Callable[[], onnx.ModelProto]],
    export_samples: dict[str, dict[str, np.ndarray]],
    onnxruntime_outputs: dict[str, dict[str, np.ndarray]],
    artifacts: Path,
    qai_hub: dict[str, Any],
) -> pd.DataFrame:
    """Compile, profile and run the configured graphs on the configured Snapdragon devices through AI Hub
    (rows that say why when there is no token); compiled models, raw profiles and failed jobs' logs go
    to `artifacts` (the catalog's `ai_hub_artifacts`). Device outputs are compared with ONNX Runtime's on
    this machine."""
    files = onnx_runtime.by_precision(onnx_models, quantized_models)
    wanted = list(qai_hub["models"])
    missing = sorted(set(wanted) - set(files))
    if missing:
        raise ValueError(f"profiling.qai_hub asks for {missing}, which were not exported or quantized")
    with tempfile.TemporaryDirectory() as tmp:
        models: dict[str, dict[str, Path]] = {}
        for key in wanted:
            precision, graph = key.split("/")
            path = Path(tmp) / precision / f"{graph}.onnx"
            path.parent.mkdir(exist_ok=True)
            onnx.save(files[key](), path)
            models.setdefault(precision, {})[graph] = path
        rows = ai_hub.profile_on_ai_hub(models, export_samples, onnxruntime_outputs, qai_hub, artifacts)
    table = pd.DataFrame(rows)
    # The folder's index, written even when nothing ran, so the folder is always a versionable output.
    atomic_write_bytes(artifacts / "rows.csv", table.to_csv(index=False).encode())
    return table


def _profiled(ai_hub_table: pd.DataFrame) -> pd.DataFrame:
    """The AI Hub rows that profiled (no rows at all when no model was configured)."""
    return ai_hub_table[ai_hub_table["status"] == "ok"] if len(ai_hub_table) else ai_hub_table


def profiling_metrics(ai_hub_table: pd.DataFrame) -> dict[str, float]:
    """Flat figures for `dvc metrics`, the ones no clock sets: how many devices AI Hub profiled on, and the
    PSNR of each device's outputs against ONNX Runtime's here."""
    ok = _profiled(ai_hub_table)
    figures = {"qai_hub_profiled_devices": ok["device"].nunique()}
    return figures | flat_figures(_ai_hub_keys(ok), "key", ["inference_psnr_db"])


def measured_profiling_figures(
    onnxruntime_table: pd.DataFrame,
    ai_hub_table: pd.DataFrame,
    onnxruntime_outputs: dict[str, dict[str, np.ndarray]],
    profiling: dict[str, Any],
) -> dict[str, float]:
    """The measured figures: ONNX Runtime's median and p90 and peak memory per precision and graph, the
    denoiser's median per precision as `onnxruntime_<precision>_latency_ms`, per-frame latency of the
    deployed app (steps x denoiser + decoder, over the video's frames) with either decoder, and AI Hub's
    estimated inference time and peak memory per device, precision and graph."""
    table = onnxruntime_table.assign(key=onnxruntime_table["precision"] + "_" + onnxruntime_table["graph"])
    figures = flat_figures(table, "key", ("median_ms", "p90_ms", "peak_memory_mb"), prefix="onnxruntime_")
    denoisers = table[table["graph"] == "denoiser"]
    denoisers = denoisers.rename(columns={"median_ms": "latency_ms"})
    figures |= flat_figures(denoisers, "precision", ["latency_ms"], prefix="onnxruntime_")
    indexed = onnxruntime_table.set_index(["precision", "graph"])
    frames = onnxruntime_outputs["fp32"]["decoder"].shape[2]
    deployed = profiling["deployed"]
    denoiser = indexed.loc[(deployed["precision"], "denoiser"), "median_ms"]
    for prefix, decoder in (("", "decoder"), ("light_", "light_decoder")):
        total = deployed["steps"] * denoiser + indexed.loc[("fp32", decoder), "median_ms"]
        figures[f"{prefix}per_frame_latency_ms"] = float(total / frames)
    device = AI_HUB_FIGURES[:2]
    return figures | flat_figures(_ai_hub_keys(_profiled(ai_hub_table)), "key", device)


AI_HUB_FIGURES = ("estimated_inference_ms", "peak_memory_mb", "inference_psnr_db")


def _ai_hub_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """AI Hub's figures per row, keyed `qai_hub_<device>_<precision>_<component>`; a figure a job did not
    return is NaN."""
    keys = [
        f"qai_hub_{slug(row['device'])}_{row['precision']}_{row['component']}"
        for row in rows.to_dict("records")
    ]
    figures = rows.reindex(columns=AI_HUB_FIGURES).apply(pd.to_numeric, errors="coerce")
    return figures.assign(key=keys)


def plot_latency(onnxruntime_table: pd.DataFrame, ai_hub_table: pd.DataFrame) -> Figure:
    """Median latency per graph and precision in ONNX Runtime here (p90 as the error bar), and AI Hub's
    estimated inference time per device when it profiled any."""
    hub = _profiled(ai_hub_table)
    figure = Figure(figsize=(11 if len(hub) else 6, 3.8))
    axes = figure.subplots(1, 2 if len(hub) else 1, squeeze=False)[0]
    labels = [
        f"{g}\n{p}" for p, g in zip(onnxruntime_table["precision"], onnxruntime_table["graph"], strict=True)
    ]
    medians = onnxruntime_table["median_ms"].to_numpy()
    errors = (onnxruntime_table["p90_ms"] - onnxruntime_table["median_ms"]).clip(lower=0).to_numpy()
    axes[0].bar(labels, medians, yerr=[np.zeros_like(errors), errors], capsize=3)
    axes[0].set(ylabel="ms per call (median, p90 bar)", title="ONNX Runtime, this CPU", yscale="log")
    axes[0].tick_params(axis="x", labelsize=7)
    if len(hub):
        for device, rows in hub.groupby("device"):
            names = [f"{p}/{c}" for p, c in zip(rows["precision"], rows["component"], strict=True)]
            axes[1].plot(names, rows["estimated_inference_ms"], marker="o", label=device)
        axes[1].set(ylabel="estimated inference ms", title="Qualcomm AI Hub")
        axes[1].legend(fontsize=7)
    figure.tight_layout()
    return figure
