"""Benchmark of how two torch processes on the same cores slow each other, by OpenMP wait policy.

A torch process whose OpenMP threads spin while they wait for work (libgomp's default) burns the cores
another process needs; with two such processes on 2 cores each op waits for threads that are descheduled,
and both crawl. `mobilei2v_pipeline` sets `OMP_WAIT_POLICY=PASSIVE` (waiting threads sleep) before torch
loads, unless the environment already sets it. This script measures a training step of the `tiny` teacher
(batch 8, the default run's 336-token latents) in a fresh process under each policy, alone and beside a
second process training the same model (what `mobilei2v generate` or a test beside `make run` does).

Run from the repository root:

    python benchmarks/threads.py            # 30 timed steps per case, about 3 minutes on 2 cores
    python benchmarks/threads.py --steps 10 # quicker

It prints a table and writes JSON to benchmarks/results/threads.json. Nothing is asserted; run it on
otherwise quiet cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from report import log, machine_info, text_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The environment of each case; libgomp's default (no variable) spins a while (GOMP_SPINCOUNT, 300k
# iterations) before it sleeps.
POLICIES = {
    "libgomp default": {},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
    "GOMP_SPINCOUNT=1000": {"GOMP_SPINCOUNT": "1000"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}


def worker(steps: int) -> None:
    """Time `steps` teacher training steps after 3 warm-ups; print the seconds per step as JSON."""
    import torch

    from mobilei2v_pipeline.models.config import get_preset
    from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
    from mobilei2v_pipeline.models.flow import flow_matching_loss

    preset = get_preset("tiny")
    grid = preset.latent_grid
    model = MobileI2VDenoiser(preset.denoiser)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(
        8, preset.denoiser.latent_channels, grid.frames, grid.height, grid.width, generator=generator
    )
    times = []
    for step in range(steps + 3):
        started = time.perf_counter()
        loss = flow_matching_loss(model, x0, torch.randn_like(x0), torch.rand(8), torch.rand(8) * 8)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step >= 3:
            times.append(time.perf_counter() - started)
    print(json.dumps(times), flush=True)


def run_case(policy: dict[str, str], steps: int, contended: bool) -> list[float]:
    # Both processes get the policy; the package's own default is overridden by setting the variable.
    env = {**os.environ, "OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "", **policy}
    env = {key: value for key, value in env.items() if value}
    command = [sys.executable, __file__, "--worker", "--steps"]
    rival = subprocess.Popen([*command, "100000"], env=env, stdout=subprocess.DEVNULL) if contended else None
    try:
        if rival:
            time.sleep(8)  # let the rival import torch and start training
        out = subprocess.run([*command, str(steps)], env=env, capture_output=True, text=True, check=True)
    finally:
        if rival:
            rival.kill()
            rival.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "threads.json")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.steps)
        return
    results = {}
    for name, policy in POLICIES.items():
        for contended in (False, True):
            log(f"{name}, {'beside a second training process' if contended else 'alone'}")
            times = run_case(policy, args.steps, contended)
            results[f"{name}, {'contended' if contended else 'alone'}"] = {
                "policy": policy,
                "contended": contended,
                "median_step_s": statistics.median(times),
                "steps": len(times),
            }
    rows = []
    for name in POLICIES:
        alone = results[f"{name}, alone"]["median_step_s"]
        shared = results[f"{name}, contended"]["median_step_s"]
        rows.append([name, f"{alone * 1000:.0f}", f"{shared * 1000:.0f}", f"{shared / alone:.1f}x"])
    print(text_table(["policy", "alone ms/step", "contended ms/step", "slowdown"], rows))
    report = {"results": results, "machine": machine_info(load_average=os.getloadavg())}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
