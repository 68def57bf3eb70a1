"""Nodes of the export pipeline: real inputs from the val split, ONNX export, and the checks that the ONNX
graphs compute what the torch models compute."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import torch

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.figures import flat_figures
from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid, get_preset
from mobilei2v_pipeline.models.flow import frame_timesteps, noisy_latents
from mobilei2v_pipeline.models.i2v import load_denoiser
from mobilei2v_pipeline.models.light_autoencoder import load_light_autoencoder
from mobilei2v_pipeline.models.mobile_denoiser import mobile_parity
from mobilei2v_pipeline.pipelines.export.graphs import INPUTS, OUTPUTS, export_graphs
from mobilei2v_pipeline.psnr import psnr_db

logger = logging.getLogger(__name__)


def export_samples(
    latent_table: pd.DataFrame,
    clip_latents: np.ndarray,
    curated_clip_frames: dict[str, Callable[[], np.ndarray]],
    latent_stats: dict[str, list[float]],
    export: dict[str, Any],
) -> dict[str, dict[str, np.ndarray]]:
    """Real inputs of every graph from the first val clips, one sample per clip (axis 0): the denoiser at
    noise levels spread over (0, 1] with the clip's motion score, the decoders on the clip's latents, the
    encoders on its first frame."""
    rows = np.flatnonzero(latent_table["split"].to_numpy() == "val")[: export["samples"]]
    if not len(rows):
        raise ValueError("export needs val clips; the latent table has none")
    val = latent_table.iloc[rows]
    latents = ae.normalize(torch.as_tensor(clip_latents[rows]), latent_stats)
    generator = torch.Generator().manual_seed(export["seed"])
    t = torch.linspace(1.0, 0.25, len(val))
    noisy = noisy_latents(latents, torch.randn(latents.shape, generator=generator), t)
    images = np.stack([np.asarray(curated_clip_frames[clip]())[0] for clip in val["clip_id"]])
    image = ae.to_model_range(images[:, None])[:, :, 0].numpy()  # (N, 3, H, W)
    motion = val["motion_score"].to_numpy(np.float32)
    return {
        "denoiser": {
            "latents": noisy.numpy(),
            "timesteps": frame_timesteps(t, latents.shape[2]).numpy(),
            "motion": motion,
        },
        "decoder": {"latents": latents.numpy()},
        "light_decoder": {"latents": latents.numpy()},
        "encoder": {"image": image},
        "light_encoder": {"image": image},
    }


@torch.no_grad()
def export_to_onnx(
    student2_model: dict[str, Any],
    vae: torch.nn.Module,
    light_autoencoder: dict[str, Any],
    latent_stats: dict[str, list[float]],
    samples: dict[str, dict[str, np.ndarray]],
    export: dict[str, Any],
) -> tuple[dict[str, onnx.ModelProto], dict[str, np.ndarray], pd.DataFrame]:
    """Every graph as fp32 ONNX at the samples' static shapes, the torch outputs on every sample (the
    reference the ONNX graphs, the quantized ones and AI Hub's are compared with), and export seconds."""
    graphs = _graphs(student2_model, vae, light_autoencoder, latent_stats, samples)
    latents = samples["denoiser"]["latents"]
    models, references, rows = {}, {}, []
    for name, graph in graphs.items():
        started = time.perf_counter()
        inputs = {n: samples[name][n][:1] for n in INPUTS[name]}
        models[name] = to_onnx(graph, inputs, [OUTPUTS[name]], export["opset"])
        rows.append({"graph": name, "onnx_export_s": time.perf_counter() - started})
        references[name] = np.concatenate(
            [
                graph(*(torch.as_tensor(v) for v in onnx_runtime.sample(samples[name], i).values())).numpy()
                for i in range(len(latents))
            ]
        )
        logger.info("Exported %s to ONNX in %.1f s", name, rows[-1]["onnx_export_s"])
    return models, references, pd.DataFrame(rows)


def _graphs(student2_model, vae, light_autoencoder, latent_stats, samples) -> dict[str, torch.nn.Module]:
    return export_graphs(
        load_denoiser(student2_model),
        vae.eval(),
        load_light_autoencoder(light_autoencoder),
        latent_stats,
        LatentGrid(*samples["denoiser"]["latents"].shape[2:]),
        *samples["encoder"]["image"].shape[-2:],
    )


EXECUTORCH_COLUMNS = [
    "graph",
    "runtime",
    "parity_max_abs_err",
    "psnr_db",
    "size_mb",
    "delegated_mac_fraction",
    "non_delegated_ops",
]
EXECUTORCH_TIME_COLUMNS = ["graph", "executorch_lowering_s", "executorch_median_ms"]


@torch.no_grad()
def export_to_executorch(
    student2_model: dict[str, Any],
    vae: torch.nn.Module,
    light_autoencoder: dict[str, Any],
    latent_stats: dict[str, list[float]],
    samples: dict[str, dict[str, np.ndarray]],
    torch_outputs: dict[str, np.ndarray],
    executorch: dict[str, Any],
) -> tuple[dict[str, bytes], pd.DataFrame, pd.DataFrame]:
    """The configured graphs as ExecuTorch programs (.pte, XNNPACK delegate), each run in ExecuTorch's
    runtime on every sample against torch: max abs error, PSNR, size, and the share of its
    multiply-accumulates XNNPACK took with the ops it left; apart, the seconds it took to lower and its
    median latency on this CPU."""
    # Imported here, not at the top: ExecuTorch and torchao take 5 s to import, and every `kedro` command
    # imports every pipeline's nodes.
    from mobilei2v_pipeline import executorch_runtime

    graphs = _graphs(student2_model, vae, light_autoencoder, latent_stats, samples)
    programs, rows, times = {}, [], []
    for name in executorch["graphs"]:
        started = time.perf_counter()
        inputs = {n: samples[name][n] for n in INPUTS[name]}
        lowered = executorch_runtime.lower(graphs[name], onnx_runtime.sample(inputs, 0))
        delegation = executorch_runtime.delegation(lowered)
        programs[name] = executorch_runtime.to_executorch(lowered)
        export_s = time.perf_counter() - started
        method = executorch_runtime.load(programs[name])
        count = len(torch_outputs[name])
        outputs = np.concatenate(
            [executorch_runtime.run(method, onnx_runtime.sample(inputs, i)) for i in range(count)]
        )
        median = executorch_runtime.median_ms(method, onnx_runtime.sample(inputs, 0), executorch["repeats"])
        times.append([name, export_s, median])
        rows.append(
            {
                "graph": name,
                "runtime": "executorch (XNNPACK)",
                "parity_max_abs_err": float(np.abs(outputs - torch_outputs[name]).max()),
                "psnr_db": psnr_db(outputs, torch_outputs[name]),
                "size_mb": len(programs[name]) / 2**20,
                **delegation,
            }
        )
        logger.info(
            "Exported %s to ExecuTorch in %.1f s: %.4f of its multiply-accumulates in XNNPACK; left to the "
            "portable kernels: %s",
            name,
            export_s,
            delegation["delegated_mac_fraction"],
            delegation["non_delegated_ops"] or "nothing",
        )
    # Each table has its header even when no graph is asked.
    return (
        programs,
        pd.DataFrame(rows, columns=EXECUTORCH_COLUMNS),
        pd.DataFrame(times, columns=EXECUTORCH_TIME_COLUMNS),
    )


def export_to_coreml(
    student2_model: dict[str, Any],
    vae: torch.nn.Module,
    light_autoencoder: dict[str, Any],
    latent_stats: dict[str, list[float]],
    samples: dict[str, dict[str, np.ndarray]],
    coreml_settings: dict[str, Any],
) -> dict[str, Any]:
    """The configured graphs as Core ML ML Programs for the iPhone (fp16 compute, iOS 17 or later, the
    samples' static shapes, the ONNX graphs' input and output names), by graph."""
    from mobilei2v_pipeline import coreml  # coremltools takes seconds to import

    graphs = _graphs(student2_model, vae, light_autoencoder, latent_stats, samples)
    models = {}
    for name in coreml_settings["graphs"]:
        started = time.perf_counter()
        inputs = {n: samples[name][n][:1] for n in INPUTS[name]}
        models[name] = coreml.convert(graphs[name], inputs, OUTPUTS[name])
        logger.info("Converted %s to Core ML in %.1f s", name, time.perf_counter() - started)
    return models


COREML_COLUMNS = ["graph", "inputs", "outputs", "minimum_ios", "compute_precision", "ops_fp32", "size_mb"]


def check_coreml_models(coreml_models: dict[str, Path]) -> pd.DataFrame:
    """Per saved package, what coremltools' own validation accepted and what an app needs to call it: inputs
    and outputs with their shapes, the oldest iOS that runs it, the precision it computes in, its size.
    Core ML runs only on Apple systems: nothing here runs the model."""
    from mobilei2v_pipeline import coreml

    rows = []
    for name, package in sorted(coreml_models.items()):
        coreml.validate(package)
        summary = coreml.spec_summary(package)
        describe = lambda features: ", ".join(f"{n}{f['shape']}" for n, f in features.items())  # noqa: E731
        rows.append(
            {
                "graph": name,
                "inputs": describe(summary["inputs"]),
                "outputs": describe(summary["outputs"]),
                **{key: summary[key] for key in COREML_COLUMNS[3:]},
            }
        )
    return pd.DataFrame(rows, columns=COREML_COLUMNS)


def to_onnx(
    graph: torch.nn.Module, inputs: dict[str, np.ndarray], output_names: list[str], opset: int
) -> onnx.ModelProto:
    """`graph` as static-shape ONNX (dynamo exporter) with named inputs in the order of its forward(),
    checked by onnx.checker."""
    program = torch.onnx.export(
        graph,
        tuple(torch.as_tensor(v) for v in inputs.values()),
        input_names=list(inputs),
        output_names=output_names,
        opset_version=opset,
        dynamo=True,
        verbose=False,
    )
    model = program.model_proto
    model.doc_string = f"mobilei2v, static shapes { ({n: list(v.shape) for n, v in inputs.items()}) }"
    drop_stack_traces(model)
    onnx.checker.check_model(model, full_check=True)
    return model


STACK_TRACE = "pkg.torch.onnx.stack_trace"


def drop_stack_traces(model: onnx.ModelProto) -> None:
    """Remove the Python stack trace the exporter records on every node: it holds this checkout's absolute
    paths, so the same graph exported from two clones would differ (and the paths would ship in the app).
    The module scopes the quantizer reads stay. In place."""
    for node in [*model.graph.node, *(n for function in model.functions for n in function.node)]:
        kept = [prop for prop in node.metadata_props if prop.key != STACK_TRACE]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)


def check_onnx_models(
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    samples: dict[str, dict[str, np.ndarray]],
    torch_outputs: dict[str, np.ndarray],
) -> pd.DataFrame:
    """Per graph (each passed onnx.checker): opset, ONNX Runtime's output against torch's on every sample
    (max abs error, PSNR), size, the op types it uses (the mobile forms must have no fused attention and
    few transposes)."""
    rows = []
    for name, load in sorted(onnx_models.items()):
        model = load()
        onnx.checker.check_model(model)
        session = onnx_runtime.session(model)
        outputs = onnx_runtime.run_all(session, samples[name])
        ops = pd.Series([n.op_type for n in model.graph.node]).value_counts()
        rows.append(
            {
                "graph": name,
                "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                "inputs": ", ".join(f"{i.name}{_shape(i)}" for i in model.graph.input),
                "parity_max_abs_err": float(np.abs(outputs - torch_outputs[name]).max()),
                "psnr_db": psnr_db(outputs, torch_outputs[name]),
                "fp32_size_mb": onnx_runtime.size_mb(model),
                "nodes": len(model.graph.node),
                "transposes": int(ops.get("Transpose", 0)),
                "attention_ops": int(ops.get("Attention", 0) + ops.get("MultiHeadAttention", 0)),
            }
        )
    return pd.DataFrame(rows)


def _shape(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def mobile_attention_parity(presets: dict[str, list[int] | None]) -> pd.DataFrame:
    """Whole-denoiser parity of the mobile forms on random weights, per preset, at the preset's own latent
    grid or at the grid given (frames, height, width)."""
    rows = []
    for name, grid in presets.items():
        preset = get_preset(name)
        config: DenoiserConfig = preset.denoiser
        result = mobile_parity(config, LatentGrid(*grid) if grid else preset.latent_grid)
        rows.append({"preset": name, **result})
        logger.info("Mobile attention parity, %s preset: %.2e", name, result["max_abs_err"])
    return pd.DataFrame(rows)


def export_metrics(
    export_table: pd.DataFrame,
    parity: pd.DataFrame,
    executorch_table: pd.DataFrame,
    coreml_table: pd.DataFrame,
) -> dict[str, float]:
    """Flat figures for `dvc metrics`: every graph's parity, PSNR and size, and the mobile attention's
    parity per preset (`mobile_attention_max_abs_err` is the worst of them), the ExecuTorch
    programs' parity, size and delegated share as `executorch_<graph>_<figure>`, and the Core ML packages'
    size as `coreml_<graph>_size_mb`."""
    executorch = ("parity_max_abs_err", "psnr_db", "size_mb", "delegated_mac_fraction")
    figures = flat_figures(executorch_table, "graph", executorch, prefix="executorch_")
    figures |= flat_figures(coreml_table, "graph", ["size_mb"], prefix="coreml_")
    figures |= flat_figures(export_table, "graph", ("parity_max_abs_err", "psnr_db", "fp32_size_mb", "opset"))
    figures["parity_max_abs_err"] = float(export_table["parity_max_abs_err"].max())
    figures |= flat_figures(parity, "preset", ["max_abs_err"], prefix="mobile_attention_")
    figures["mobile_attention_max_abs_err"] = float(parity["max_abs_err"].max())
    return figures


def export_timings(
    export_times: pd.DataFrame, executorch_times: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The stage's measured figures, one row per graph: seconds to export to ONNX, seconds to lower to
    ExecuTorch and the program's median ms in ExecuTorch's runtime here (blank for a graph with no
    program); flat as `<graph>_onnx_export_s`, `executorch_<graph>_lowering_s`,
    `executorch_<graph>_median_ms`."""
    table = export_times.merge(executorch_times, on="graph", how="left")
    figures = flat_figures(table, "graph", ["onnx_export_s"])
    renamed = executorch_times.rename(columns=lambda c: c.removeprefix("executorch_"))
    figures |= flat_figures(renamed, "graph", ["lowering_s", "median_ms"], prefix="executorch_")
    return table, figures
