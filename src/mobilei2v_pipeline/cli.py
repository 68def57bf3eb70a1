"""The `mobilei2v` command: what people and schedulers call that is not a Kedro pipeline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from mobilei2v_pipeline import __version__
from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.video.encode import encode_mp4


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mobilei2v")
def main() -> None:
    """MobileI2V pipeline tools. Pipelines run with `kedro run`; reproduction with `dvc repro`."""


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--num-videos", type=int, help="default: the project's synthetic.num_videos")
@click.option("--width", type=int, help="default: synthetic.width")
@click.option("--height", type=int, help="default: synthetic.height")
@click.option("--fps", type=float, help="default: synthetic.fps")
@click.option("--seconds", type=float, help="default: synthetic.seconds")
@click.option("--seed", type=int, help="default: synthetic.seed")
@click.option("--env", default=None, help="Kedro env whose synthetic settings are the defaults")
def synthesize(out_dir: Path, env: str | None, **given: int | float | None) -> None:
    """Write seeded synthetic MP4 videos (moving sprites over panning textures) to OUT, with the generator
    settings of this project's config (parameters_data_curation.yml's `synthetic`), those given overriding
    them; no deliberately bad videos."""
    from kedro.utils import find_kedro_project

    from mobilei2v_pipeline.pipelines.data_curation.nodes import synthesize_raw_videos
    from mobilei2v_pipeline.project_config import load_config

    root = find_kedro_project(Path.cwd())
    if root is None:
        raise click.ClickException(f"{Path.cwd()} is not inside a mobilei2v-pipeline project")
    settings = load_config(root, env)["synthetic"] | {k: v for k, v in given.items() if v is not None}
    videos = synthesize_raw_videos({}, settings | {"rejects": {}})  # what the pipeline would write
    with click.progressbar(videos.items(), label="synthesize", item_show_func=lambda v: v and v[0]) as bar:
        for name, encode in bar:
            atomic_write_bytes(out_dir / name, encode())
    click.echo(f"wrote {len(videos)} videos to {out_dir}")


@main.command("model-card")
@click.option("--preset", "preset_name", default="paper", show_default=True, help="tiny or paper")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def model_card_command(preset_name: str, as_json: bool) -> None:
    """Parameters (total and per part), latent shape, tokens, block pattern and MACs per denoiser call."""
    from mobilei2v_pipeline.models.config import PRESETS
    from mobilei2v_pipeline.models.model_card import format_model_card, model_card

    if preset_name not in PRESETS:
        raise click.BadParameter(
            f"unknown preset {preset_name!r}; choose from {sorted(PRESETS)}", param_hint="--preset"
        )
    card = model_card(PRESETS[preset_name])
    click.echo(json.dumps(card, indent=2) if as_json else format_model_card(card))


@main.command("import-checkpoint")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--preset", "preset_name", default="paper", show_default=True, help="RoPE and embedding settings"
)
def import_checkpoint_command(src: Path, out_path: Path, preset_name: str) -> None:
    """Convert a public MobileI2V checkpoint SRC (a .pth file, or a folder holding one) into this project's
    denoiser file OUT, the format of data/06_models/teacher/teacher.pt. The width, depth and block pattern
    are read from the checkpoint; the rest comes from the preset. Local files only."""
    import torch

    from mobilei2v_pipeline.atomic_write import atomic_write
    from mobilei2v_pipeline.models.checkpoint_import import (
        CheckpointImportError,
        import_public_checkpoint,
        our_key,
        public_architecture,
        read_public_state_dict,
    )
    from mobilei2v_pipeline.models.config import PRESETS
    from mobilei2v_pipeline.models.i2v import denoiser_file

    if preset_name not in PRESETS:
        raise click.BadParameter(
            f"unknown preset {preset_name!r}; choose from {sorted(PRESETS)}", param_hint="--preset"
        )
    try:
        public = read_public_state_dict(src)
        config = public_architecture(public, PRESETS[preset_name].denoiser)
        model = import_public_checkpoint(src, config)
    except (CheckpointImportError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    atomic_write(out_path, lambda handle: torch.save(denoiser_file(model), handle))
    params = sum(p.numel() for p in model.parameters())
    ignored = sum(our_key(k) is None for k in public)
    click.echo(
        f"wrote {out_path}: {params:,} parameters, hidden {config.hidden_size}, {config.depth} blocks "
        f"{config.block_pattern}, {config.num_heads} heads, {config.latent_channels}-channel latents; "
        f"ignored {ignored} keys of the unused text path and position buffers"
    )


@main.command()
@click.option("--image", "image_path", type=click.Path(path_type=Path), required=True, help="the first frame")
@click.option(
    "--motion",
    default=2.0,
    show_default=True,
    help="motion score (pixels per frame at 256p), within the range of the train clips' scores",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    help="sampling steps (default: the env's: teacher.sampling.steps, distillation.student_steps, 1)",
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--model", default="teacher", type=click.Choice(["teacher", "student1", "student2"]), show_default=True
)
@click.option("--env", default=None, help="Kedro env whose trained models to use (default: base + local)")
@click.option("--seed", default=0, show_default=True)
@click.option("--shift", type=float, help="timestep shift of the sampler (default: teacher.sampling.shift)")
@click.option("--fps", default=8.0, show_default=True)
def generate(
    image_path: Path,
    motion: float,
    steps: int | None,
    out_path: Path,
    model: str,
    env: str | None,
    seed: int,
    shift: float | None,
    fps: float,
) -> None:
    """Make a video from IMAGE with a trained model of this project, and write it to OUT (MP4)."""
    from mobilei2v_pipeline.generate import generate_video

    seconds = time.perf_counter()
    frames, steps = generate_video(image_path, motion, steps, model, env, seed, shift, Path.cwd())
    atomic_write_bytes(out_path, encode_mp4(frames, fps))
    click.echo(
        f"wrote {out_path}: {len(frames)} frames of {frames.shape[2]}x{frames.shape[1]}, motion {motion}, "
        f"{steps} steps of the {model}, in {time.perf_counter() - seconds:.1f} s"
    )


@main.command("figures")
@click.option(
    "--strip",
    "strip_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write the README's GIF strip of generated videos here (e.g. docs/default_run.gif)",
)
def figures_command(strip_path: Path | None) -> None:
    """Print the README's tables (autoencoder, evaluation, the evaluation's latency) from this project's
    data/08_reporting/."""
    from mobilei2v_pipeline.report_figures import (
        autoencoder_table,
        evaluation_table,
        latency_table,
        strip_gif,
    )

    project = Path.cwd()
    try:
        tables = (autoencoder_table(project), evaluation_table(project), latency_table(project))
        click.echo("\n\n".join(tables))
        if strip_path:
            atomic_write_bytes(strip_path, strip_gif(project))
            click.echo(f"wrote {strip_path}")
    except FileNotFoundError as error:
        raise click.ClickException(f"{error}; run `make run` first") from error


@main.command("paper-check")
@click.option("--stage", "stages", multiple=True, help="run only these stages (repeatable); default: all")
@click.option("--from", "from_stage", help="run this stage and every one after it")
def paper_check_command(stages: tuple[str, ...], from_stage: str | None) -> None:
    """Run every stage at the paper's shapes with the paper_check env (counts cut to minutes, data under
    data/paper_check): wall time and peak memory per stage, in data/paper_check/08_reporting/paper_check.md.
    Without the real LTX-Video VAE a randomly initialised one is written and used, and said to be. The table
    keeps the last run of the stages not run this time."""
    import logging

    from mobilei2v_pipeline.paper_check import ENV, run_paper_check

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        runs = run_paper_check(Path.cwd(), list(stages) or None, from_stage)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo((Path.cwd() / "data" / ENV / "08_reporting" / "paper_check.md").read_text())
    failed = [r for r in runs if r.exit_code]
    if failed:
        raise click.ClickException(f"stage {failed[0].stage} failed; its log: {failed[0].log}")


# The training node of each stage `mobilei2v train` knows: (pipeline, node). Kept here, not in train_stage.py,
# so `mobilei2v --help` need not import Kedro and MLflow.
TRAINING_NODES = {
    "autoencoder": ("autoencoder", "train_autoencoder"),
    "teacher": ("teacher", "train_teacher"),
    "distillation_stage1": ("distillation", "distill_stage1"),
    "distillation_stage2": ("distillation", "distill_stage2"),
}


@main.command("train")
@click.argument("stage", type=click.Choice(list(TRAINING_NODES)))
@click.option("--env", default=None, help="Kedro env (e.g. paper)")
def train_command(stage: str, env: str | None) -> None:
    """Train one STAGE outside `kedro run`: the command to give `accelerate launch` on several machines."""
    from mobilei2v_pipeline.train_stage import run_training_node

    saved = run_training_node(*TRAINING_NODES[stage], env, Path.cwd())
    if saved:
        click.echo(f"trained {stage}; saved {', '.join(saved)}")


@main.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface both UIs listen on")
@click.option("--mlflow-port", default=5000, show_default=True, type=click.IntRange(1, 65535))
# kedro-viz refuses ports above the registered range.
@click.option("--viz-port", default=4141, show_default=True, type=click.IntRange(1, 49151))
def ui_command(host: str, mlflow_port: int, viz_port: int) -> None:
    """The MLflow UI of the store `kedro run` logs to, and kedro-viz, on localhost; Ctrl-C stops both."""
    from mobilei2v_pipeline.ui import UIError, serve_ui

    try:
        code = serve_ui(Path.cwd(), host=host, mlflow_port=mlflow_port, viz_port=viz_port)
    except UIError as error:
        raise click.ClickException(str(error)) from error
    raise SystemExit(code)


@main.command("retrain")
@click.option("--env", default=None, help="Kedro env of the stages (default: KEDRO_ENV, else base)")
@click.option("--wait", "wait_s", default=0.0, show_default=True, help="seconds to wait for another retrain")
def retrain_command(env: str | None, wait_s: float) -> None:
    """Pull, rerun what changed (dvc repro), gate the new model against the champion, push on promotion.

    Exit codes: 0 promoted a new champion, 3 kept the champion (nothing changed, or the challenger was
    rejected), 75 another retrain holds the lock, 1 failed. The report: data/08_reporting/retrain_report.md
    and an MLflow run named `retrain`.
    """
    import logging

    from mobilei2v_pipeline.retrain import KEPT, PROMOTED, retrain

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("dvc").setLevel(logging.INFO)  # "Running stage ..." lines, as `dvc repro` prints them
    run = retrain(Path.cwd(), env, wait_s)
    failed = run.exit_code not in (PROMOTED, KEPT)
    click.echo(f"retrain {run.outcome} (exit {run.exit_code}): {run.message}", err=failed)
    raise SystemExit(run.exit_code)


# Kedro loads `cli` from a project's <package>/cli.py, so these commands also appear under `kedro`.
cli = main
