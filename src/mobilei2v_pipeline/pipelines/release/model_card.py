"""The model card of a release (model_card.md): what someone deciding whether to ship a version reads first.
What the model is, every program it ships as (target, precision, size, fidelity, latency), how it was made,
and what was not measured. Built from the version's tags, so the card and the registry cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from mobilei2v_pipeline.models.config import DenoiserConfig, LatentGrid

NOT_RUN_HERE = "not run here: Core ML runs only on Apple devices (spec and conversion checked)"


@dataclass(frozen=True)
class Program:
    """One shipped file: `path` is where the release run logged it."""

    target: str  # "ONNX", "ExecuTorch (XNNPACK)", "Core ML"
    precision: str  # fp32, w8a8, w8a16, fp16
    graph: str  # denoiser, decoder, light_decoder, encoder, light_encoder
    path: str
    size_mb: float


# Per (target, precision): the tags of a graph's output fidelity, its decoded video's fidelity and its latency
# on the CPU that ran the pipeline ("{graph}" is filled in); a tag the run did not write is left out.
FIGURES = {
    ("ONNX", "fp32"): ("{graph}_psnr_db", None, "onnxruntime_fp32_{graph}_median_ms"),
    ("ONNX", "w8a8"): ("w8a8_psnr_db", "w8a8_video_psnr_db", "onnxruntime_w8a8_{graph}_median_ms"),
    ("ONNX", "w8a16"): ("w8a16_psnr_db", "w8a16_video_psnr_db", "onnxruntime_w8a16_{graph}_median_ms"),
    ("ExecuTorch (XNNPACK)", "fp32"): ("executorch_{graph}_psnr_db", None, "executorch_{graph}_median_ms"),
    ("ExecuTorch (XNNPACK)", "w8a8"): (
        "executorch_w8a8_{graph}_psnr_db",
        "executorch_w8a8_video_psnr_db",
        "executorch_w8a8_{graph}_median_ms",
    ),
}


def _figure(tags: dict[str, str], pattern: str | None, graph: str, unit: str) -> str | None:
    key = pattern.format(graph=graph) if pattern else None
    return f"{float(tags[key]):.4g} {unit}" if key in tags else None


def _program_row(program: Program, tags: dict[str, str]) -> str:
    output, video, latency = FIGURES.get((program.target, program.precision), (None, None, None))
    reference = "torch" if program.precision == "fp32" else "fp32"
    fidelity = [
        f"output {value} vs {reference}" for value in [_figure(tags, output, program.graph, "dB")] if value
    ]
    fidelity += [f"video {value} vs fp32" for value in [_figure(tags, video, program.graph, "dB")] if value]
    if program.target == "Core ML":
        fidelity = [NOT_RUN_HERE]
    speed = _figure(tags, latency, program.graph, "ms") or "not measured"
    cells = [program.target, program.precision, program.graph, f"{program.size_mb:.2f}"]
    cells += ["; ".join(fidelity) or "not measured", speed, f"`{program.path}`"]
    return "| " + " | ".join(cells) + " |"


def model_card(
    name: str,
    version: int,
    config: DenoiserConfig,
    grid: LatentGrid,
    parameters: int,
    programs: list[Program],
    tags: dict[str, str],
    evaluation_figures: list[str],
) -> str:
    """The card as Markdown."""
    softmax = len(config.softmax_blocks)
    lines = [
        f"# {name}, version {version}",
        "",
        "## What it is",
        f"MobileI2V's image-to-video denoiser, the stage-2 student of two-stage timestep distillation: it "
        f"makes a video from one image in {tags.get('steps', '?')} step(s), deployed at "
        f"{tags.get('precision', '?')}. {parameters / 1e6:.1f}M parameters; hidden size "
        f"{config.hidden_size}, {config.depth} blocks ({config.depth - softmax} linear attention, "
        f"{softmax} softmax), "
        f"{config.num_heads} heads; latent grid {grid.frames} x {grid.height} x {grid.width} "
        f"({grid.tokens} tokens) of {config.latent_channels} channels. The app encodes the image once, runs "
        "the denoiser once per step and decodes once (`decoder` or the light `light_decoder`).",
        "",
        "## Programs",
        "Fidelity: PSNR of the program's output against the torch model (fp32) or against the fp32 program "
        "(quantized), and of the decoded video at the deployed step count. Latency: median on the CPU that "
        "ran the pipeline, not on a phone.",
        "",
        "| target | precision | graph | size MB | fidelity | latency | file |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(_program_row(program, tags) for program in programs),
        "",
        "## Quality",
        *(f"- {key}: {float(tags[key]):.4g}" for key in evaluation_figures if key in tags),
        "",
        "## How it was made",
        "A flow-matching teacher trained on the curated clips, distilled in two stages (stage 1 to few steps "
        "on the teacher's trajectories, stage 2 to one step with distribution-matching and adversarial "
        "losses), then exported (ONNX, ExecuTorch, Core ML) and quantized (ONNX Runtime's static QDQ, "
        "PT2E with XNNPACK's quantizer) by the project's pipeline.",
        f"- commit {tags.get('git_commit', 'unknown')}"
        + (" (with uncommitted changes)" if tags.get("git_dirty") == "true" else ""),
        f"- data version {tags.get('data_version', 'unknown')}, Kedro env "
        f"{tags.get('kedro_env', 'unknown')}, seed {tags.get('seed', 'unknown')}",
        "",
        "## Limits",
        *_limits(tags),
    ]
    return "\n".join(lines) + "\n"


def _limits(tags: dict[str, str]) -> list[str]:
    limits = [
        "- Latencies were measured on the CPU that ran the pipeline; they say how the programs compare, not "
        "how fast a phone runs them.",
        "- The Core ML packages were converted and their specs validated on Linux; they were not run, so "
        "their fidelity and speed on an iPhone are not measured.",
    ]
    if not float(tags.get("qai_hub_profiled_devices", 0)):
        statuses = sorted({value for key, value in tags.items() if key.startswith("qai_hub/")})
        limits.append(
            f"- No program was profiled on a phone (Qualcomm AI Hub: {'; '.join(statuses) or 'not run'})."
        )
    if tags.get("data_version", "").startswith("synthetic-"):
        limits.append("- Trained on the synthetic clips of the project's generator, not on real footage.")
    return limits
