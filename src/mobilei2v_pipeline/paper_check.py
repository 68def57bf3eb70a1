"""`mobilei2v paper-check`: the paper's whole path on this machine, at the paper's shapes, before GPU days.

Every stage runs as its DVC stage's own command (`kedro run --pipelines ...`) with the `paper_check` env
(the `paper` env with only counts cut, its data under data/paper_check), one after another, each timed and
with the peak resident memory of its whole process tree sampled; the stage's output goes to a log file.
Without the real LTX-Video VAE in data/01_raw/pretrained/ltx-video-vae a randomly initialised one, in
LTX-Video's architecture and diffusers format, is written to the env's `autoencoder.pretrained_path`, whose
folder name says so.

The result: data/paper_check/08_reporting/paper_check.json and a Markdown table beside it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.process_memory import run_sampled
from mobilei2v_pipeline.report_figures import markdown_table

logger = logging.getLogger(__name__)
ENV = "paper_check"
REAL_VAE = Path("data/01_raw/pretrained/ltx-video-vae")  # where the paper env expects the LTX-Video VAE
MEMORY_LIMIT_MB = 20 * 1024  # what the check is meant to fit on a 24 GB machine


@dataclass
class StageRun:
    stage: str
    command: str
    exit_code: int
    wall_s: float
    peak_rss_mb: float
    log: str


def stage_commands(project: Path) -> dict[str, list[str]]:
    """The DVC stages in their order, each with its command and the paper_check env."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return {name: [*stage["cmd"].split(), "--env", ENV] for name, stage in stages.items()}


def env_parameters(project: Path) -> dict:
    """The paper_check env's resolved parameters."""
    from kedro.config import OmegaConfigLoader

    from mobilei2v_pipeline.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(str(project / "conf"), env=ENV, **CONFIG_LOADER_ARGS)["parameters"]


def write_random_vae(folder: Path, seed: int = 0) -> None:
    """A randomly initialised VAE of LTX-Video's architecture, saved in diffusers format (what the real one's
    vae/ folder holds), with a note saying what it is. Its convolutions are drawn so activations keep their
    scale (normal, std 1 / sqrt(fan-in)): with diffusers' own initialisation the decoder gives exactly 0, one
    grey video for any latents, and every later PSNR would be infinite and every motion 0."""
    import torch

    from mobilei2v_pipeline.models import autoencoder as ae

    torch.manual_seed(seed)
    vae = ae.build_vae("ltx")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in vae.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Conv3d):
                module.weight.normal_(0.0, module.weight[0].numel() ** -0.5, generator=generator)
    partial = folder.with_name(folder.name + ".partial")  # renamed when whole: a killed write is not reused
    shutil.rmtree(partial, ignore_errors=True)
    vae.ltx.save_pretrained(partial)
    (partial / "RANDOM_WEIGHTS.txt").write_text(
        "Randomly initialised LTX-Video VAE (architecture only), written by `mobilei2v paper-check` because "
        f"no real LTX-Video VAE was found in {REAL_VAE}. Its outputs are noise; it checks shapes, memory and "
        "time, not quality.\n"
    )
    partial.rename(folder)


def vae_parameters(project: Path) -> list[str]:
    """`--params` for the autoencoder stage: the real LTX-Video VAE when it is there; otherwise the env's own
    path, where a random one is written first if there is none yet."""
    if (project / REAL_VAE / "config.json").is_file() or (
        project / REAL_VAE / "vae" / "config.json"
    ).is_file():
        logger.info("paper-check: using the real LTX-Video VAE in %s", REAL_VAE)
        return ["--params", f"autoencoder.pretrained_path={REAL_VAE}"]
    folder = project / env_parameters(project)["autoencoder"]["pretrained_path"]
    if not (folder / "config.json").is_file():
        logger.warning(
            "paper-check: no LTX-Video VAE in %s; writing a RANDOMLY INITIALISED one to %s", REAL_VAE, folder
        )
        write_random_vae(folder)
    else:
        logger.warning("paper-check: using the RANDOMLY INITIALISED LTX-Video VAE in %s", folder)
    return []


def run_paper_check(
    project: Path, stages: list[str] | None = None, from_stage: str | None = None
) -> list[StageRun]:
    """Run the stages (all by default, or these, or this one and those after it) in order; stop at the first
    that fails. The report keeps the last run of the stages not run this time."""
    commands = stage_commands(project)
    unknown = set(stages or []) | ({from_stage} if from_stage else set())
    unknown -= set(commands)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; the stages are {list(commands)}")
    if from_stage:
        stages = list(commands)[list(commands).index(from_stage) :]
    reports = project / "data" / ENV / "08_reporting"
    (reports / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KEDRO_ENV": ENV, "TQDM_DISABLE": os.environ.get("TQDM_DISABLE", "1")}
    bin_dir = Path(sys.executable).parent
    earlier = previous_runs(reports)
    runs: list[StageRun] = []
    for name, command in commands.items():
        if stages and name not in stages:
            continue
        if name == "autoencoder":
            command = [*command, *vae_parameters(project)]
        log_path = reports / "logs" / f"{name}.log"
        logger.info("paper-check: %s (%s)", name, " ".join(command))
        with log_path.open("w") as log:
            code, wall, peak = run_sampled([str(bin_dir / command[0]), *command[1:]], project, env, log)
        runs.append(StageRun(name, " ".join(command), code, wall, peak, str(log_path.relative_to(project))))
        logger.info(
            "paper-check: %s %s in %.0f s, peak %.0f MB", name, "ok" if code == 0 else "FAILED", wall, peak
        )
        done = {r.stage for r in runs}
        write_report(reports, [r for r in earlier if r.stage not in done] + runs, list(commands))
        if code:
            break
    return runs


def previous_runs(reports: Path) -> list[StageRun]:
    """The stage runs of the last report, if any."""
    path = reports / "paper_check.json"
    if not path.is_file():
        return []
    return [StageRun(**stage) for stage in json.loads(path.read_text())["stages"]]


def write_report(reports: Path, runs: list[StageRun], order: list[str]) -> None:
    """paper_check.json (every stage's last run, in the stages' order) and paper_check.md (a table of wall
    time and peak memory)."""
    runs = sorted(runs, key=lambda r: order.index(r.stage) if r.stage in order else len(order))
    total = {
        "wall_s": sum(r.wall_s for r in runs),
        "peak_rss_mb": max((r.peak_rss_mb for r in runs), default=0),
    }
    report = {"stages": [asdict(r) for r in runs], "total": total, "memory_limit_mb": MEMORY_LIMIT_MB}
    atomic_write_bytes(reports / "paper_check.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(reports / "paper_check.md", (format_table(runs) + "\n").encode())


def format_table(runs: list[StageRun]) -> str:
    import pandas as pd

    rows = [
        {
            "stage": r.stage,
            "result": "ok" if r.exit_code == 0 else f"failed ({r.exit_code})",
            "wall": f"{r.wall_s / 60:.1f} min",
            "peak memory": f"{r.peak_rss_mb / 1024:.1f} GB",
        }
        for r in runs
    ]
    wall = sum(r.wall_s for r in runs)
    peak = max((r.peak_rss_mb for r in runs), default=0.0)
    rows.append(
        {"stage": "all", "result": "", "wall": f"{wall / 60:.1f} min", "peak memory": f"{peak / 1024:.1f} GB"}
    )
    return markdown_table(pd.DataFrame(rows))
