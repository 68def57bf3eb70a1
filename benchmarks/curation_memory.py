"""Benchmark of curation's memory: peak resident memory of `kedro run --pipelines data_curation` at two folder
sizes, to show it does not grow with the number of videos.

For each count in `--videos` (default 16 and 64) it copies the project's code and config to a temporary
folder and runs the real command there with the `paper` env's clip settings (17 frames of 720x1280 every 2nd
source frame) on that many synthetic 720p videos (`synthetic.num_videos`), sampling the resident memory of the
whole process tree (the run and its worker processes, with psutil) every 0.1 s. It reports the peak, the wall
time, the clips curated and the ratio of the peaks; curation keeps the videos in flight, not the folder, so
the ratio should stay near 1.

Run from the repository root (a few minutes per 16 videos on 2 cores; about 50 MB of disk per clip):

    python benchmarks/curation_memory.py                 # 16 and 64 videos
    python benchmarks/curation_memory.py --videos 4 8    # a quick check

It prints a table and writes JSON to benchmarks/results/curation_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psutil
from report import log, machine_info, text_table

from mobilei2v_pipeline.atomic_write import atomic_write_bytes
from mobilei2v_pipeline.process_memory import run_sampled

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
PROJECT_FILES = ["conf", "src", "pyproject.toml"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, nargs="+", default=[16, 64], help="folder sizes (16 64)")
    parser.add_argument("--workers", type=int, default=0, help="curation.workers (default 0: every core)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "curation_memory.json")
    return parser.parse_args(argv)


def run_curation(videos: int, workers: int, root: Path) -> dict:
    """The data_curation pipeline in a fresh project copy, its process tree's peak resident memory sampled."""
    for name in PROJECT_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, root / name)
    command = [
        str(Path(sys.executable).parent / "kedro"),
        "run",
        "--pipelines",
        "data_curation",
        "--env",
        "paper",
        "--params",
        f"synthetic.num_videos={videos},curation.workers={workers}",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "TQDM_DISABLE": "1"}
    with (root / "curation.log").open("w") as log:
        code, wall, peak = run_sampled(command, root, env, log)
    if code:
        tail = (root / "curation.log").read_text()[-3000:]
        raise RuntimeError(f"curation of {videos} videos failed:\n{tail}")
    figures = json.loads((root / "data/08_reporting/data_curation.json").read_text())
    return {"videos": videos, "peak_rss_mb": peak, "wall_s": wall, "clips_kept": figures["clips_kept"]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs = []
    for videos in args.videos:
        with tempfile.TemporaryDirectory(prefix="curation-memory-") as folder:
            log(f"curating {videos} synthetic 720p videos (paper clip settings)")
            runs.append(run_curation(videos, args.workers, Path(folder)))
        log(f"{videos} videos: peak {runs[-1]['peak_rss_mb']:.0f} MB in {runs[-1]['wall_s']:.0f} s")
    for run in runs:
        run["peak_over_first"] = run["peak_rss_mb"] / runs[0]["peak_rss_mb"]
    header = ["videos", "clips kept", "wall s", "peak RSS MB", "vs first"]
    rows = [
        [
            str(r["videos"]),
            str(r["clips_kept"]),
            f"{r['wall_s']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['peak_over_first']:.2f}x",
        ]
        for r in runs
    ]
    print(text_table(header, rows))
    report = {"workers": args.workers, "machine": machine_info(psutil=psutil.__version__), "runs": runs}
    atomic_write_bytes(args.output, (json.dumps(report, indent=2) + "\n").encode())
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
