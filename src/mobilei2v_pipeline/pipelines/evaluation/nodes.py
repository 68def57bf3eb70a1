"""Nodes of the evaluation pipeline: every model at several step counts on one fixed held-out set, scored
against the teacher at its full step count and timed on this machine in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from mobilei2v_pipeline.figures import flat_figures
from mobilei2v_pipeline.models import autoencoder as ae
from mobilei2v_pipeline.models.flow import euler_sample
from mobilei2v_pipeline.models.i2v import example_noise, load_denoiser
from mobilei2v_pipeline.models.light_autoencoder import LightAutoencoder, load_light_autoencoder
from mobilei2v_pipeline.pipelines.evaluation.fvd import FrechetVideoDistance
from mobilei2v_pipeline.psnr import UINT8_PEAK, psnr_db
from mobilei2v_pipeline.video import metrics
from mobilei2v_pipeline.video.clip_scores import motion_score

REFERENCE = "teacher"  # rows are scored against this model at its full step count
LABEL_HEIGHT = 24  # pixels of the white strip that names each band of a motion GIF


@dataclass
class HeldOutExamples:
    """The evaluation's fixed examples: one row per (val clip, motion, seed) in `table` (clip_id,
    clip_number, motion, seed), each example's input image (E, H, W, 3) uint8, and the real val clips
    (N, T, H, W, 3) uint8 for temporal smoothness and FVD."""

    table: pd.DataFrame
    images: np.ndarray
    reference_clips: np.ndarray

    def __len__(self) -> int:
        return len(self.table)


def held_out_examples(
    latent_table: pd.DataFrame,
    curated_clip_frames: dict[str, Callable[[], np.ndarray]],
    evaluation: dict[str, Any],
) -> HeldOutExamples:
    """The fixed held-out set: the first frames of the first val clips, each with every requested motion
    score and every noise seed. Noise is drawn per (seed, clip), so it does not depend on the models."""
    val = latent_table[latent_table["split"] == "val"].head(evaluation["clips"])
    if val.empty:
        raise ValueError("evaluation needs val clips; the latent table has none")
    rows = [
        {"clip_id": clip, "clip_number": n, "motion": float(m), "seed": int(s)}
        for n, clip in enumerate(val["clip_id"])
        for m in evaluation["motion_scores"]
        for s in evaluation["seeds"]
    ]
    clips = {clip: np.asarray(curated_clip_frames[clip]()) for clip in val["clip_id"]}
    return HeldOutExamples(
        table=pd.DataFrame(rows),
        images=np.stack([clips[row["clip_id"]][0] for row in rows]),
        reference_clips=np.stack(list(clips.values())),
    )


@torch.no_grad()
def generate_example(
    denoiser: torch.nn.Module,
    vae: torch.nn.Module,
    light: LightAutoencoder,
    stats: dict[str, list[float]],
    image: np.ndarray,
    motion: float,
    seed: int,
    clip_number: int,
    latent_frames: int,
    steps: int,
    shift: float,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """One image-to-video call, end to end (encode the image, sample, decode), with each part's seconds; the
    light encoder and decoder are timed on the same image and latents, and their video returned beside."""
    height, width = image.shape[:2]
    pixels = ae.to_model_range(image[None, None])  # (1, 3, 1, H, W)
    started = time.perf_counter()
    first = ae.normalize(ae.encode_first_frame(vae, pixels), stats)
    encoded = time.perf_counter()
    noise = example_noise(seed, clip_number, (1, first.shape[1], latent_frames, *first.shape[-2:]))
    latents = ae.denormalize(
        euler_sample(denoiser, noise, first, torch.tensor([motion]), steps, shift), stats
    )
    sampled = time.perf_counter()
    video = ae.decode(vae, latents, height, width)
    decoded = time.perf_counter()
    light.encoder(pixels[:, :, 0])
    light_encoded = time.perf_counter()
    light_video = light.decoder(latents, height, width)
    light_decoded = time.perf_counter()
    seconds = {
        "encoder": encoded - started,
        "denoiser": sampled - encoded,
        "decoder": decoded - sampled,
        "light_encoder": light_encoded - decoded,
        "light_decoder": light_decoded - light_encoded,
    }
    return ae.to_uint8(video)[0], ae.to_uint8(light_video)[0], seconds


def model_rows(evaluation: dict[str, Any], teacher_steps: int) -> list[tuple[str, int]]:
    """(model, steps) of every row: the teacher at its configured step counts and at its full N."""
    rows = [(REFERENCE, int(n)) for n in sorted({*evaluation["teacher_steps"], teacher_steps})]
    rows += [("student1", int(n)) for n in evaluation["student1_steps"]]
    rows += [("student2", int(n)) for n in evaluation["student2_steps"]]
    return rows


def row_names(evaluation: dict[str, Any], teacher_sampling: dict[str, float]) -> list[str]:
    """`<model>_<steps>step` of every row, in the table's order."""
    return [f"{model}_{steps}step" for model, steps in model_rows(evaluation, int(teacher_sampling["steps"]))]


def _video_key(row: str, example: int) -> str:
    """A row's video of one held-out example in `evaluation_videos`."""
    return f"{row}/{example:04d}"


class _Generator:
    """Every model's image-to-video call on the held-out examples, with the models loaded once."""

    def __init__(self, examples, vae, light_autoencoder, stats, clip_latents, model_files, sampling, threads):
        self.examples, self.vae, self.stats = examples, vae.eval(), stats
        self.light = load_light_autoencoder(light_autoencoder)
        self.models = {name: load_denoiser(file) for name, file in model_files.items()}
        self.latent_frames, self.shift, self.threads = (
            clip_latents.shape[2],
            float(sampling["shift"]),
            threads,
        )

    def __call__(self, model: str, steps: int, i: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        row = self.examples.table.iloc[i]
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or threads)
        try:
            return generate_example(
                self.models[model],
                self.vae,
                self.light,
                self.stats,
                self.examples.images[i],
                float(row["motion"]),
                int(row["seed"]),
                int(row["clip_number"]),
                self.latent_frames,
                steps,
                self.shift,
            )
        finally:
            torch.set_num_threads(threads)


def generate_videos(
    examples: HeldOutExamples,
    vae: Any,
    light_autoencoder: dict[str, Any],
    latent_stats: dict[str, list[float]],
    clip_latents: np.ndarray,
    teacher_model: dict[str, Any],
    student1_model: dict[str, Any],
    student2_model: dict[str, Any],
    teacher_sampling: dict[str, float],
    evaluation: dict[str, Any],
) -> dict[str, Callable[[], np.ndarray]]:
    """Every row's video of every held-out example, made one at a time as the videos dataset saves it: each
    (2, frames, H, W, 3) uint8, the VAE's decode and the light decoder's decode of the same latents. Memory
    holds one video, whatever the number of rows and examples."""
    models = {"teacher": teacher_model, "student1": student1_model, "student2": student2_model}
    generate = _Generator(
        examples, vae, light_autoencoder, latent_stats, clip_latents, models, teacher_sampling, 0
    )
    rows = model_rows(evaluation, int(teacher_sampling["steps"]))
    progress = tqdm(total=len(rows) * len(examples.table), desc="evaluation videos")

    def video(model: str, steps: int, i: int) -> np.ndarray:
        vae_video, light_video, _ = generate(model, steps, i)
        progress.update()
        return np.stack([vae_video, light_video])

    return {
        _video_key(f"{model}_{steps}step", i): partial(video, model, steps, i)
        for model, steps in rows
        for i in range(len(examples.table))
    }


def time_rows(
    examples: HeldOutExamples,
    vae: Any,
    light_autoencoder: dict[str, Any],
    latent_stats: dict[str, list[float]],
    clip_latents: np.ndarray,
    teacher_model: dict[str, Any],
    student1_model: dict[str, Any],
    student2_model: dict[str, Any],
    teacher_sampling: dict[str, float],
    evaluation: dict[str, Any],
) -> pd.DataFrame:
    """One row per (model, steps): the median ms per video of encoder, denoiser (all steps) and decoder,
    end to end and per frame, with the VAE and with the light encoder and decoder, over `latency_repeats`
    calls on each of the first `latency_examples` examples after `latency_warmup` untimed calls, with
    `threads` torch threads; and the speed-up over the teacher at N. Measured on this machine's clock: a
    rerun gives other numbers."""
    models = {"teacher": teacher_model, "student1": student1_model, "student2": student2_model}
    generate = _Generator(
        examples,
        vae,
        light_autoencoder,
        latent_stats,
        clip_latents,
        models,
        teacher_sampling,
        evaluation["threads"],
    )
    timed = range(min(evaluation["latency_examples"], len(examples.table)))
    records = []
    for model, steps in tqdm(
        model_rows(evaluation, int(teacher_sampling["steps"])), desc="evaluation timing"
    ):
        for _ in range(evaluation["latency_warmup"]):
            generate(model, steps, 0)
        calls = [generate(model, steps, i) for i in timed for _ in range(evaluation["latency_repeats"])]
        ms = 1000 * pd.DataFrame([seconds for *_, seconds in calls]).median()
        frames = calls[0][0].shape[0]
        latency = float(ms["encoder"] + ms["denoiser"] + ms["decoder"])
        light = float(ms["light_encoder"] + ms["denoiser"] + ms["light_decoder"])
        records.append(
            {
                "row": f"{model}_{steps}step",
                "model": model,
                "steps": steps,
                "encoder_ms": float(ms["encoder"]),
                "denoiser_ms": float(ms["denoiser"]),
                "decoder_ms": float(ms["decoder"]),
                "latency_ms": latency,
                "per_frame_ms": latency / frames,
                "light_encoder_ms": float(ms["light_encoder"]),
                "light_decoder_ms": float(ms["light_decoder"]),
                "light_latency_ms": light,
                "light_per_frame_ms": light / frames,
            }
        )
    result = pd.DataFrame(records)
    reference = result.set_index("row").loc[f"{REFERENCE}_{int(teacher_sampling['steps'])}step"]
    result["speedup_vs_teacher"] = reference["latency_ms"] / result["latency_ms"]
    result["light_speedup_vs_teacher"] = reference["light_latency_ms"] / result["light_latency_ms"]
    return result


def evaluation_table(
    videos: dict[str, Callable[[], np.ndarray]],
    examples: HeldOutExamples,
    teacher_sampling: dict[str, float],
    evaluation: dict[str, Any],
) -> pd.DataFrame:
    """One row per (model, steps): agreement with the teacher at N, first-frame fidelity, motion
    adherence, temporal smoothness against the data's, the light decoder's fidelity, FVD or why not. Only
    figures of the videos, read one example at a time: the same models, seeds and config give the same
    table on every run."""
    table = examples.table
    names = row_names(evaluation, teacher_sampling)
    reference_row = f"{REFERENCE}_{int(teacher_sampling['steps'])}step"
    data_jitter = float(np.mean([metrics.temporal_jitter(c) for c in examples.reference_clips]))
    fvd = _fvd_scorer(evaluation["fvd"]["i3d_path"], examples.reference_clips)
    records = []
    for name in tqdm(names, desc="evaluation figures"):
        per_example = []
        for i, image in enumerate(examples.images):
            video, light_video = videos[_video_key(name, i)]()
            reference = videos[_video_key(reference_row, i)]()[0]
            per_example.append(
                {
                    # Frame 0 is the pinned image: agreement is measured on the frames the model generates.
                    "psnr": psnr_db(video[1:], reference[1:], UINT8_PEAK),
                    "ssim": metrics.video_ssim(video[1:], reference[1:]),
                    "first": psnr_db(video[:1], image[None], UINT8_PEAK),
                    "motion": motion_score(video),
                    "jitter": metrics.temporal_jitter(video),
                    "light": psnr_db(light_video, video, UINT8_PEAK),
                }
            )
        scores = pd.DataFrame(per_example)
        measured, asked = scores["motion"].to_numpy(), table["motion"].to_numpy()
        model, steps = name.removesuffix("step").rsplit("_", 1)
        records.append(
            {
                "row": name,
                "model": model,
                "steps": int(steps),
                "psnr_vs_teacher": float(scores["psnr"].mean()),
                "ssim_vs_teacher": float(scores["ssim"].mean()),
                "first_frame_psnr": float(scores["first"].mean()),
                "motion_measured": float(measured.mean()),
                "motion_error": float(np.abs(measured - asked).mean()),
                "motion_rel_error": metrics.mean_relative_error(measured, asked),
                "motion_rank_corr": metrics.rank_correlation(asked, measured),
                "temporal_jitter": float(scores["jitter"].mean()),
                "smoothness_vs_data": float(scores["jitter"].mean()) / data_jitter,
                "light_psnr_vs_vae": float(scores["light"].mean()),
                **fvd(
                    lambda name=name: np.stack([videos[_video_key(name, i)]()[0] for i in range(len(table))])
                ),
            }
        )
    return pd.DataFrame(records)


def _fvd_scorer(
    i3d_path: str | None, real: np.ndarray
) -> Callable[[Callable[[], np.ndarray]], dict[str, Any]]:
    """FVD of a row's videos (loaded when it is computed) against the real clips (the I3D and the real
    features are made once), or a note saying why it was skipped."""
    if not i3d_path:
        note = {"fvd": float("nan"), "fvd_note": "skipped: no local I3D weights (evaluation.fvd.i3d_path)"}
        return lambda videos: note
    if not Path(i3d_path).is_file():
        raise FileNotFoundError(
            f"evaluation.fvd.i3d_path {i3d_path} does not exist; nothing is downloaded: put a TorchScript "
            "I3D there or set it to null to skip FVD"
        )
    distance = FrechetVideoDistance(i3d_path, real)
    return lambda videos: {"fvd": distance(videos()), "fvd_note": f"I3D: {i3d_path}"}


# The figures of every row that go into evaluation.json as <row>_<figure>, and into measured/evaluation.json.
QUALITY_COLUMNS = [
    "psnr_vs_teacher",
    "ssim_vs_teacher",
    "first_frame_psnr",
    "motion_error",
    "motion_rel_error",
    "motion_rank_corr",
    "smoothness_vs_data",
    "fvd",
    "light_psnr_vs_vae",
]
LATENCY_COLUMNS = [
    "latency_ms",
    "denoiser_ms",
    "decoder_ms",
    "per_frame_ms",
    "speedup_vs_teacher",
    "light_latency_ms",
    "light_per_frame_ms",
    "light_speedup_vs_teacher",
]


def evaluation_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Flat, finite figures for `dvc metrics`: every row's quality, and how far each student beats the
    teacher at its own step count (when both rows were evaluated)."""
    figures = flat_figures(table, "row", QUALITY_COLUMNS)
    rows = table.set_index("row")
    for name, steps in (("student1", 2), ("student2", 1)):
        student, teacher = f"{name}_{steps}step", f"{REFERENCE}_{steps}step"
        if {student, teacher} <= set(rows.index):  # both rows evaluated
            gain = rows.loc[student, "psnr_vs_teacher"] - rows.loc[teacher, "psnr_vs_teacher"]
            figures[f"{student}_psnr_gain_db"] = float(gain)
    return figures


def measured_evaluation_figures(latency: pd.DataFrame) -> dict[str, float]:
    """Every row's latency figures, and the headline speed-ups of the 1-step student over the teacher at N:
    end to end with the VAE, with the light pair, and the denoiser's share alone (the encoder and decoder
    cost the same in every row)."""
    figures = flat_figures(latency, "row", LATENCY_COLUMNS)
    rows = latency.set_index("row")
    student = rows.loc["student2_1step"]
    reference = rows.loc[rows[rows["model"] == REFERENCE]["steps"].idxmax()]  # the teacher at N
    figures["speedup_teacher_vs_student2_1step"] = float(student["speedup_vs_teacher"])
    figures["light_speedup_teacher_vs_student2_1step"] = float(student["light_speedup_vs_teacher"])
    figures["denoiser_speedup_teacher_vs_student2_1step"] = float(
        reference["denoiser_ms"] / student["denoiser_ms"]
    )
    return figures


def plot_quality_and_latency(table: pd.DataFrame, latency: pd.DataFrame) -> Figure:
    """Agreement PSNR and end-to-end latency against the number of steps, one line per model."""
    figure = Figure(figsize=(10, 3.6))
    quality, speed = figure.subplots(1, 2)
    for model, rows in table.groupby("model", sort=False):
        rows = rows.sort_values("steps")
        finite = rows[np.isfinite(rows["psnr_vs_teacher"])]
        quality.plot(finite["steps"], finite["psnr_vs_teacher"], marker="o", label=model)
    for model, rows in latency.groupby("model", sort=False):
        rows = rows.sort_values("steps")
        speed.plot(rows["steps"], rows["latency_ms"], marker="o", label=model)
    quality.set(xscale="log", xlabel="sampling steps", ylabel="PSNR vs teacher at N (dB)")
    speed.set(xscale="log", yscale="log", xlabel="sampling steps", ylabel="latency per video (ms)")
    for axis in (quality, speed):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure


def side_by_side_grids(
    videos: dict[str, Callable[[], np.ndarray]],
    examples: HeldOutExamples,
    teacher_sampling: dict[str, float],
    evaluation: dict[str, Any],
) -> dict[str, Callable[[], np.ndarray]]:
    """One video per held-out example, made when saved: input image | the configured rows, left to right."""
    names = _configured_rows(teacher_sampling, evaluation["grid_rows"])

    def grid(i: int) -> np.ndarray:
        columns = [videos[_video_key(name, i)]()[0] for name in names]
        image = np.repeat(examples.images[i][None], columns[0].shape[0], axis=0)
        return np.concatenate([image, *columns], axis=2)

    return {
        f"{row['clip_id']}_motion{row['motion']:g}_seed{row['seed']}": partial(grid, i)
        for i, row in examples.table.iterrows()
    }


def _configured_rows(teacher_sampling: dict[str, float], names: list[str]) -> list[str]:
    """Row names as configured, `{N}` standing for the teacher's full step count (which differs per env)."""
    return [name.replace("{N}", str(int(teacher_sampling["steps"]))) for name in names]


def motion_gifs(
    videos: dict[str, Callable[[], np.ndarray]],
    examples: HeldOutExamples,
    teacher_sampling: dict[str, float],
    evaluation: dict[str, Any],
) -> dict[str, Callable[[], np.ndarray]]:
    """One video per held-out image, made when saved, to compare models and motion at once: a band per
    configured row, top to bottom, each a panel per motion score, left to right, all from the first seed's
    noise."""
    table = examples.table
    names = _configured_rows(teacher_sampling, evaluation["motion_gif_rows"])
    first_seed = table[table["seed"] == int(evaluation["seeds"][0])]

    def gif(rows: pd.DataFrame) -> np.ndarray:  # rows are in motion_scores order
        bands = []
        for name in names:
            panels = [videos[_video_key(name, i)]()[0] for i in rows.index]
            band = np.concatenate(panels, axis=2)  # (T, H, panels * W, 3)
            header = _band_header(name, rows["motion"].tolist(), panels[0].shape[2])
            bands += [np.broadcast_to(header, (band.shape[0], *header.shape)), band]
        return np.concatenate(bands, axis=1)

    return {str(clip): partial(gif, rows) for clip, rows in first_seed.groupby("clip_id", sort=False)}


def _band_header(name: str, motions: list[float], panel_width: int) -> np.ndarray:
    """A white strip above a band: the row's name, then each panel's requested motion over that panel."""
    strip = Image.new("RGB", (panel_width * len(motions), LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(strip)
    draw.text((2, 0), name, fill="black")
    for j, motion in enumerate(motions):
        draw.text((j * panel_width + 2, LABEL_HEIGHT // 2), f"motion {motion:g}", fill="black")
    return np.asarray(strip)
