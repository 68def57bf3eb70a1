"""Nodes of the quantization pipeline."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import torch
from onnx.external_data_helper import load_external_data_for_model
from onnxruntime import quantization as ort_quant
from onnxruntime.quantization.calibrate import save_tensors_data

from mobilei2v_pipeline import onnx_runtime
from mobilei2v_pipeline.figures import flat_figures
from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.config import LatentGrid
from mobilei2v_pipeline.models.flow import Denoiser, euler_sample
from mobilei2v_pipeline.models.i2v import example_noise, load_denoiser
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser
from mobilei2v_pipeline.pipelines.quantization.calibration import minmax_ranges
from mobilei2v_pipeline.psnr import MODEL_RANGE_PEAK, psnr_db

logger = logging.getLogger(__name__)
DENOISER_INPUTS = ("latents", "timesteps", "motion")


@dataclass
class SamplingExamples:
    """Examples as the student samples them, E of them: first-frame latents (E, C, 1, h, w), noise
    (E, C, T, h, w), motion scores (E,), and which are held out of calibration to score it (E,) bool."""

    first: np.ndarray
    noise: np.ndarray
    motion: np.ndarray
    held_out: np.ndarray

    def __len__(self) -> int:
        return len(self.motion)

    def sampler_inputs(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Example i's noise, first-frame latent and motion, batch 1, as `euler_sample` takes them."""
        return tuple(torch.as_tensor(a[i : i + 1]) for a in (self.noise, self.first, self.motion))


def sampling_examples(
    latent_table: pd.DataFrame,
    clip_latents: np.ndarray,
    latent_stats: dict[str, list[float]],
    calibration: dict[str, Any],
) -> SamplingExamples:
    """Every (val clip, motion, seed) as the student samples it: the clip's first-frame latent, noise and
    motion. The last `held_out_clips` clips are kept out of calibration and score the quantized graphs."""
    rows = np.flatnonzero(latent_table["split"].to_numpy() == "val")[: calibration["val_clips"]]
    if len(rows) <= calibration["held_out_clips"]:
        raise ValueError(
            f"quantization needs more than {calibration['held_out_clips']} val clips to calibrate on and "
            f"score with; the latent table has {len(rows)}"
        )
    latents = ae.normalize(torch.as_tensor(clip_latents[rows]), latent_stats)
    examples = [
        (n, float(motion), int(seed))
        for n in range(len(rows))
        for motion in calibration["motion_scores"]
        for seed in calibration["seeds"]
    ]
    noise = [example_noise(seed, n, latents.shape[1:]) for n, _, seed in examples]
    return SamplingExamples(
        first=latents[[n for n, _, _ in examples], :, :1].numpy(),
        noise=torch.stack(noise).numpy(),
        motion=np.array([m for _, m, _ in examples], dtype=np.float32),
        held_out=np.array([n >= len(rows) - calibration["held_out_clips"] for n, _, _ in examples]),
    )


@torch.no_grad()
def capture_denoiser_inputs(
    student2_model: dict[str, Any],
    examples: SamplingExamples,
    calibration: dict[str, Any],
    teacher_sampling: dict[str, float],
) -> dict[str, np.ndarray]:
    """The denoiser's inputs at every call while the student samples every example at each configured step
    count (its own 1 step and more, for states between noise and data); `held_out` marks the examples
    kept out of calibration."""
    model = load_denoiser(student2_model)
    calls: dict[str, list[np.ndarray]] = {name: [] for name in (*DENOISER_INPUTS, "held_out")}
    for i in range(len(examples)):

        def recording(latents, timesteps, motion, i=i):
            for name, value in zip(DENOISER_INPUTS, (latents, timesteps, motion), strict=True):
                calls[name].append(value.numpy())
            calls["held_out"].append(np.array([examples.held_out[i]]))
            return model(latents, timesteps, motion)

        for steps in calibration["steps"]:
            euler_sample(recording, *examples.sampler_inputs(i), int(steps), float(teacher_sampling["shift"]))
    return {name: np.concatenate(values) for name, values in calls.items()}


class _Inputs(ort_quant.CalibrationDataReader):
    """ONNX Runtime's calibration reader over the captured inputs, one batch-1 sample at a time."""

    def __init__(self, inputs: dict[str, np.ndarray]):
        count = len(next(iter(inputs.values())))
        self._samples = (onnx_runtime.sample(inputs, i) for i in range(count))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._samples, None)


def quantize_models(
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    denoiser_inputs: dict[str, np.ndarray],
    quantization: dict[str, Any],
) -> dict[str, onnx.ModelProto]:
    """Static QDQ quantization of the configured graphs at every configured precision, calibrated on the
    captured denoiser inputs that are not held out (one calibration per graph, shared by its precisions).
    Keys are "<precision>/<graph>"."""
    others = set(quantization["graphs"]) - {"denoiser"}
    if others:
        raise ValueError(
            f"quantization.graphs: only the denoiser has captured calibration inputs, not {others}"
        )
    calibration = {k: denoiser_inputs[k][~denoiser_inputs["held_out"]] for k in DENOISER_INPUTS}
    quantized = {}
    for graph in quantization["graphs"]:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            calibrated = _Calibrated(onnx_models[graph](), calibration, quantization, Path(tmp))
            logger.info("Calibrated %s in %.1f s", graph, time.perf_counter() - started)
            for precision, types in quantization["precisions"].items():
                started = time.perf_counter()
                quantized[f"{precision}/{graph}"] = calibrated.quantize(types)
                logger.info("Quantized %s to %s in %.1f s", graph, precision, time.perf_counter() - started)
    return quantized


class _Calibrated:
    """A graph prepared for ONNX Runtime's static quantizer (shape inference and clean-up, which keep node
    names), with the ops and modules kept in float and its calibration ranges: what every precision shares.
    Files live in `folder`, the weights in external files that sessions map instead of copying."""

    def __init__(
        self, model: onnx.ModelProto, calibration: dict[str, np.ndarray], settings: dict, folder: Path
    ):
        self.settings, self.folder, self.calibration = settings, folder, calibration
        self.keep_types = set(settings["keep_float_ops"])
        self.keep_nodes = module_nodes(model, settings["keep_float_modules"])
        self.op_types = sorted({node.op_type for node in model.graph.node} - self.keep_types)
        self.method = ort_quant.CalibrationMethod[settings["calibrate_method"]]
        source, self.prepared = folder / "source.onnx", folder / "prepared.onnx"
        onnx.save(model, source, save_as_external_data=True, location="source.weights")
        # Saving with external data moved the weights out of `model` (the caller's): put them back.
        load_external_data_for_model(model, str(folder))
        ort_quant.quant_pre_process(
            source,
            self.prepared,
            skip_symbolic_shape=True,
            save_as_external_data=True,
            external_data_location="prepared.weights",
        )
        self.cache = None
        if self.method == ort_quant.CalibrationMethod.MinMax:  # streamed: bounded memory at any size
            count = len(next(iter(calibration.values())))
            samples = lambda: (onnx_runtime.sample(calibration, i) for i in range(count))  # noqa: E731
            ranges = minmax_ranges(self.prepared, samples, self.op_types, settings["calibration_budget_mb"])
            self.cache = folder / "ranges.json"
            save_tensors_data(ranges, self.cache)

    def quantize(self, types: dict[str, str]) -> onnx.ModelProto:
        """One precision: `weights` and `activations` (ONNX Runtime QuantTypes) and the `format`, QDQ (what
        QNN and AI Hub take) or QOperator (QLinear* ops, for ONNX Runtime's CPU provider)."""
        form = types.get("format", "QDQ")
        output = self.folder / f"quantized-{types['weights']}-{types['activations']}-{form}.onnx"
        # MinMax reads the ranges computed once; ONNX Runtime's histogram calibrators calibrate here.
        reader = None if self.cache else _Inputs(self.calibration)
        ort_quant.quantize_static(
            self.prepared,
            output,
            reader,
            quant_format=ort_quant.QuantFormat[form],
            op_types_to_quantize=self.op_types,
            nodes_to_exclude=sorted(self.keep_nodes),
            per_channel=self.settings["per_channel"],
            activation_type=ort_quant.QuantType[types["activations"]],
            weight_type=ort_quant.QuantType[types["weights"]],
            calibrate_method=self.method,
            use_external_data_format=True,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            calibration_cache_path=self.cache,
        )
        keep = lambda n: n.op_type in self.keep_types or n.name in self.keep_nodes  # noqa: E731
        return float_inputs(onnx.load(output), keep) if form == "QDQ" else onnx.load(output)


def module_nodes(model: onnx.ModelProto, modules: list[str]) -> set[str]:
    """Names of the nodes the exporter recorded as inside any of `modules` (torch module paths)."""
    found = set()
    for node in model.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), "")
        if any(f"model.{module}" in scopes for module in modules):
            found.add(node.name)
    return found


def float_inputs(model: onnx.ModelProto, keep: Callable[[onnx.NodeProto], bool]) -> onnx.ModelProto:
    """Feed the nodes `keep` selects their activations unquantized: the quantizer leaves the nodes
    themselves alone but rounds what their quantized neighbours hand them (x -> Q -> DQ -> node); rewire
    such inputs to x and drop the Q/DQ pairs nothing reads any more. In place; returns the model."""
    nodes = model.graph.node
    producer = {output: node for node in nodes for output in node.output}
    for node in filter(keep, nodes):
        for i, name in enumerate(node.input):
            dequantize = producer.get(name)
            quantize = producer.get(dequantize.input[0]) if dequantize is not None else None
            if (
                dequantize
                and dequantize.op_type == "DequantizeLinear"
                and quantize
                and quantize.op_type == "QuantizeLinear"
            ):
                node.input[i] = quantize.input[0]
    while True:  # unread DQs, then the Qs only they read
        read = {name for node in nodes for name in node.input} | {o.name for o in model.graph.output}
        dead = [
            n
            for n in nodes
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in read
        ]
        if not dead:
            return model
        for node in dead:
            nodes.remove(node)


def _as_denoiser(run: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Denoiser:
    """A runtime's denoiser (`run` takes the graph's named inputs) with the torch sampler's convention."""

    def denoise(latents: torch.Tensor, timesteps: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        feed = dict(zip(DENOISER_INPUTS, (latents.numpy(), timesteps.numpy(), motion.numpy()), strict=True))
        return torch.from_numpy(run(feed))

    return denoise


def _videos(denoiser: Denoiser, decoder, examples: SamplingExamples, steps: int, shift: float) -> np.ndarray:
    """Videos in [-1, 1] of the held-out examples, sampled by `denoiser` and decoded in ONNX Runtime."""
    videos = []
    for i in np.flatnonzero(examples.held_out):
        latents = euler_sample(denoiser, *examples.sampler_inputs(i), steps, shift)
        videos.append(onnx_runtime.run(decoder, {"latents": latents.numpy()}))
    return np.concatenate(videos)


def quantization_table(
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    quantized_models: dict[str, Callable[[], onnx.ModelProto]],
    denoiser_inputs: dict[str, np.ndarray],
    examples: SamplingExamples,
    quantization: dict[str, Any],
    teacher_sampling: dict[str, float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per precision (fp32 first) of the denoiser: its output's PSNR against fp32 on the held-out
    inputs, the PSNR of the final decoded video against the all-fp32 one (held-out examples, the deployed
    step count), size; and apart, its median ONNX Runtime CPU latency and speed-up over fp32."""
    held_out = {k: denoiser_inputs[k][denoiser_inputs["held_out"]] for k in DENOISER_INPUTS}
    threads, steps = quantization["threads"], int(quantization["deployed_steps"])
    decoder = onnx_runtime.session(onnx_models["decoder"](), threads)
    models = {"fp32": onnx_models["denoiser"]()}
    models |= {p: quantized_models[f"{p}/denoiser"]() for p in quantization["precisions"]}
    rows, times, reference = [], [], {}
    for precision, model in models.items():
        session = onnx_runtime.session(model, threads)
        outputs = onnx_runtime.run_all(session, held_out)
        denoiser = _as_denoiser(partial(onnx_runtime.run, session))
        videos = _videos(denoiser, decoder, examples, steps, float(teacher_sampling["shift"]))
        reference = reference or {"outputs": outputs, "videos": videos}
        latency = onnx_runtime.time_runs(
            session, onnx_runtime.sample(held_out, 0), quantization["latency_repeats"]
        )
        rows.append(
            {
                "precision": precision,
                "psnr_db": psnr_db(outputs, reference["outputs"]),
                "video_psnr_db": psnr_db(videos, reference["videos"], MODEL_RANGE_PEAK),
                "size_mb": onnx_runtime.size_mb(model),
                "quantized_nodes": sum(n.op_type == "DequantizeLinear" for n in model.graph.node),
            }
        )
        times.append({"precision": precision, "latency_ms": float(np.median(latency))})
        psnr, ms = rows[-1]["psnr_db"], times[-1]["latency_ms"]
        logger.info("Denoiser %s: output PSNR %.2f dB, %.1f ms", precision, psnr, ms)
    table, latency_table = pd.DataFrame(rows), pd.DataFrame(times)
    table["size_ratio"] = table["size_mb"] / table.loc[0, "size_mb"]
    latency_table["speedup"] = latency_table.loc[0, "latency_ms"] / latency_table["latency_ms"]
    return table, latency_table


def quantization_metrics(table: pd.DataFrame, executorch_table: pd.DataFrame) -> dict[str, float]:
    """`<precision>_<figure>` of the ONNX graphs for `dvc metrics` (fp32 agrees with itself, so only its
    size), and the ExecuTorch programs' `executorch_<precision>_denoiser_<figure>` with
    `executorch_<precision>_video_psnr_db`."""
    figures = flat_figures(table, "precision", ("psnr_db", "video_psnr_db", "size_mb", "size_ratio"))
    programs = executorch_table.assign(program=executorch_table["precision"] + "_denoiser")
    columns = ("psnr_db", "size_mb", "size_ratio", "delegated_mac_fraction")
    figures |= flat_figures(programs, "program", columns, prefix="executorch_")
    return figures | flat_figures(executorch_table, "precision", ["video_psnr_db"], prefix="executorch_")


def measured_quantization_figures(
    latency: pd.DataFrame, executorch_latency: pd.DataFrame
) -> dict[str, float]:
    """`<precision>_latency_ms` and `<precision>_speedup` (over fp32) of the ONNX graphs in ONNX Runtime,
    and `executorch_<precision>_denoiser_median_ms` and `_speedup` in ExecuTorch's, measured on this CPU."""
    figures = flat_figures(latency, "precision", ("latency_ms", "speedup"))
    programs = executorch_latency.assign(program=executorch_latency["precision"] + "_denoiser")
    return figures | flat_figures(programs, "program", ("median_ms", "speedup"), prefix="executorch_")


EXECUTORCH_COLUMNS = [
    "precision",
    "psnr_db",
    "video_psnr_db",
    "size_mb",
    "size_ratio",
    "delegated_mac_fraction",
    "non_delegated_ops",
]
EXECUTORCH_TIME_COLUMNS = ["precision", "median_ms", "speedup"]


@torch.no_grad()
def quantize_executorch(
    student2_model: dict[str, Any],
    executorch_programs: dict[str, Callable[[], bytes]],
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    denoiser_inputs: dict[str, np.ndarray],
    examples: SamplingExamples,
    quantization: dict[str, Any],
    teacher_sampling: dict[str, float],
) -> tuple[dict[str, bytes], pd.DataFrame, pd.DataFrame]:
    """The denoiser as an 8-bit ExecuTorch program (PT2E with XNNPACK's quantizer, calibrated on the same
    captured inputs as the ONNX graphs, the condition embeddings kept in float, the modulation projections
    with int8 weights and activations quantized at run time), and, beside the export's fp32
    program, both run in ExecuTorch's runtime: output PSNR against fp32 on the held-out inputs, the PSNR of
    the decoded video (deployed step count, ONNX fp32 decoder) against fp32's, size, the share of
    multiply-accumulates in XNNPACK; apart, the median latency here and the speed-up over fp32. Programs
    are keyed "denoiser_w8a8". Made when the export made the fp32 program (`export.executorch.graphs`)."""
    if "denoiser" not in executorch_programs:
        logger.info("No fp32 ExecuTorch denoiser (export.executorch.graphs): no 8-bit program either")
        return {}, pd.DataFrame(columns=EXECUTORCH_COLUMNS), pd.DataFrame(columns=EXECUTORCH_TIME_COLUMNS)
    from mobilei2v_pipeline import executorch_runtime  # 5 s to import: only when this node runs

    calibration = {k: denoiser_inputs[k][~denoiser_inputs["held_out"]] for k in DENOISER_INPUTS}
    held_out = {k: denoiser_inputs[k][denoiser_inputs["held_out"]] for k in DENOISER_INPUTS}
    grid = LatentGrid(*denoiser_inputs["latents"].shape[2:])
    graph = MobileDenoiser(load_denoiser(student2_model), grid).eval()
    started = time.perf_counter()
    samples = (onnx_runtime.sample(calibration, i) for i in range(len(calibration["latents"])))
    lowered = executorch_runtime.lower_8bit(
        graph, samples, ["latents"], dynamic_modules=quantization["executorch_dynamic_modules"]
    )
    delegation = {"w8a8": executorch_runtime.delegation(lowered)}  # fp32's is in the export's table
    programs = {"fp32": executorch_programs["denoiser"](), "w8a8": executorch_runtime.to_executorch(lowered)}
    logger.info("Quantized the ExecuTorch denoiser to 8 bits in %.1f s", time.perf_counter() - started)
    decoder = onnx_runtime.session(onnx_models["decoder"](), quantization["threads"])
    steps, shift = int(quantization["deployed_steps"]), float(teacher_sampling["shift"])
    repeats, rows, times, reference = quantization["latency_repeats"], [], [], {}
    for precision, program in programs.items():
        method = executorch_runtime.load(program)
        run = partial(executorch_runtime.run, method)
        outputs = np.concatenate(
            [run(onnx_runtime.sample(held_out, i)) for i in range(len(held_out["motion"]))]
        )
        videos = _videos(_as_denoiser(run), decoder, examples, steps, shift)
        reference = reference or {"outputs": outputs, "videos": videos}
        rows.append(
            {
                "precision": precision,
                "psnr_db": psnr_db(outputs, reference["outputs"]),
                "video_psnr_db": psnr_db(videos, reference["videos"], MODEL_RANGE_PEAK),
                "size_mb": len(program) / 2**20,
                **delegation.get(precision, {}),
            }
        )
        median = executorch_runtime.median_ms(method, onnx_runtime.sample(held_out, 0), repeats)
        times.append({"precision": precision, "median_ms": median})
        psnr, size = rows[-1]["psnr_db"], rows[-1]["size_mb"]
        logger.info("ExecuTorch %s: PSNR %.2f dB, %.2f MB, %.1f ms", precision, psnr, size, median)
    table, latency_table = pd.DataFrame(rows), pd.DataFrame(times)
    table["size_ratio"] = table["size_mb"] / table.loc[0, "size_mb"]
    latency_table["speedup"] = latency_table.loc[0, "median_ms"] / latency_table["median_ms"]
    return {"denoiser_w8a8": programs["w8a8"]}, table[EXECUTORCH_COLUMNS], latency_table
