"""The `mobilei2v` command: what people and schedulers call that is not a Kedro pipeline."""

from __future__ import annotations

from pathlib import Path

import click

from mobilei2v_pipeline import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mobilei2v")
def main() -> None:
    """MobileI2V pipeline tools. Pipelines run with `kedro run`; reproduction with `dvc repro`."""


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--num-videos", default=8, show_default=True)
@click.option("--width", default=320, show_default=True)
@click.option("--height", default=180, show_default=True)
@click.option("--fps", default=24.0, show_default=True)
@click.option("--seconds", default=3.0, show_default=True)
@click.option("--seed", default=42, show_default=True)
def synthesize(
    out_dir: Path, num_videos: int, width: int, height: int, fps: float, seconds: float, seed: int
) -> None:
    """Write seeded synthetic MP4 videos (moving sprites over panning textures) to OUT."""
    from mobilei2v_pipeline.atomic_write import atomic_write_bytes
    from mobilei2v_pipeline.video.synthetic import plan_synthetic_videos, synthetic_video_bytes

    specs = plan_synthetic_videos(
        seed, num_videos, width, height, fps, seconds, min_speed=0.1, max_speed=6.0, num_sprites=4, rejects={}
    )
    with click.progressbar(specs, label="synthesize", item_show_func=lambda s: s and s.name) as bar:
        for spec in bar:
            atomic_write_bytes(out_dir / f"{spec.name}.mp4", synthetic_video_bytes(spec))
    click.echo(f"wrote {len(specs)} videos to {out_dir}")


# Kedro loads `cli` from a project's <package>/cli.py, so these commands also appear under `kedro`.
cli = main
