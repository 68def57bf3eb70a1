"""The README's figures, read back from a run's reports in data/08_reporting/ (and its timings in
data/08_reporting/measured/): tables in Markdown and the strip of generated videos, so the README shows what
the committed dvc.lock's run measured."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageSequence

REPORTS = Path("data/08_reporting")
MEASURED = REPORTS / "measured"
AUTOENCODER_FIGURES = [
    "vae_val_psnr_db",
    "vae_train_psnr_db",
    "vae_val_motion_ratio",
    "vae_val_motion_spearman",
    "light_val_psnr_db",
]
EVALUATION_COLUMNS = {
    "row": "row",
    "psnr_vs_teacher": "PSNR vs teacher@N (dB)",
    "first_frame_psnr": "first frame PSNR (dB)",
    "motion_measured": "motion measured",
    "motion_rel_error": "motion rel. error",
    "motion_rank_corr": "motion rank corr",
}
LATENCY_COLUMNS = {
    "row": "row",
    "denoiser_ms": "denoiser ms (all steps)",
    "latency_ms": "ms per video (VAE)",
    "light_latency_ms": "ms per video (light)",
    "light_speedup_vs_teacher": "light speed-up",
}


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def autoencoder_table(project: Path) -> str:
    figures = json.loads((project / REPORTS / "autoencoder.json").read_text())
    return markdown_table(
        pd.DataFrame({"figure": AUTOENCODER_FIGURES, "value": [figures[k] for k in AUTOENCODER_FIGURES]})
    )


def evaluation_table(project: Path) -> str:
    table = pd.read_csv(project / REPORTS / "evaluation_table.csv")
    return markdown_table(table[list(EVALUATION_COLUMNS)].rename(columns=EVALUATION_COLUMNS))


def latency_table(project: Path) -> str:
    """The evaluation's torch timings on this machine (measured: they differ from run to run)."""
    table = pd.read_csv(project / MEASURED / "evaluation_latency.csv")
    return markdown_table(table[list(LATENCY_COLUMNS)].rename(columns=LATENCY_COLUMNS))


def strip_gif(project: Path) -> bytes:
    """The first held-out image's motion GIF (the teacher at N and the 1-step student at each motion score),
    re-encoded with one shared palette so it stays a few tens of KB."""
    gifs = sorted((project / REPORTS / "evaluation_motion_gifs").glob("*.gif"))
    if not gifs:
        raise FileNotFoundError(
            f"no motion GIFs in {project / REPORTS / 'evaluation_motion_gifs'}: run `make run`"
        )
    with Image.open(gifs[0]) as gif:
        frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]
        duration = gif.info.get("duration", 250)
    palette = Image.fromarray(np.concatenate(frames, axis=0)).quantize(colors=255)
    images = [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return out.getvalue()
