"""The one training loop every stage shares (autoencoder, teacher, both distillation stages).

Stages differ by a `TrainingTask` (networks, loss, validation, samples); the loop owns the rest: accelerate
(devices, mixed precision, gradient accumulation, data parallelism), warm-up, clipping, EMA, checkpoints
with a limit and resume, per-step MLflow curves and a progress bar. A task that trains several networks
against each other (distillation stage 2: student, fake score, discriminator) names them as `phases`, each
with its own optimiser, loss and update interval.

Resuming is exact on CPU: every random draw of a step (its batch and the task's noise) comes from a
generator seeded by (seed, step, rank), so a run killed at any checkpoint and resumed ends with the same
weights as one that was never stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import mlflow
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from mlflow.entities import Metric
from tqdm.auto import tqdm

from mobilei2v_pipeline.training.launch import launch_processes
from mobilei2v_pipeline.video.encode import encode_gif

if TYPE_CHECKING:
    from diffusers.training_utils import EMAModel

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class TrainingConfig:
    """Every knob of a training run; `batch_size` is global (split over processes and accumulation)."""

    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int = 0
    lr_scheduler: str = "constant_with_warmup"  # a diffusers.optimization schedule: linear, cosine, ...
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"  # "no", "bf16" or "fp16"
    ema_decay: float = 0.0  # 0 turns EMA off
    checkpoint_every: int = 100
    checkpoints_total_limit: int = 2
    resume: str = "latest"  # "latest" or "never"
    log_every: int = 1
    validate_every: int = 0  # 0: only before the first and after the last step
    sample_every: int = 0  # 0: only after the last step
    num_processes: int = 1
    seed: int = 0


LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor], torch.Generator], tuple[torch.Tensor, dict]]


@dataclass(frozen=True)
class Phase:
    """One network of a task with its own optimiser: `loss` is minimised over `parameters(model)` (every
    trainable parameter when None) on every step divisible by `every`."""

    name: str
    loss: LossFn
    parameters: Callable[[torch.nn.Module], Iterable[torch.nn.Parameter]] | None = None
    every: int = 1
    learning_rate: float | None = None  # None: the config's


class TrainingTask(Protocol):
    """What a stage brings to the loop. `fingerprint` names its data and networks: checkpoints of another
    fingerprint (new data, another model) are never resumed from. `phases()` lists the networks trained
    with separate optimisers; the first phase's network is the one the stage produces (EMA follows it).
    A task that subclasses this protocol inherits one phase: `loss` over every parameter.
    """

    name: str
    fingerprint: str

    def build_model(self) -> torch.nn.Module: ...

    def num_examples(self) -> int: ...

    def batch(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]: ...

    def loss(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]: ...

    def validate(self, model: torch.nn.Module) -> dict[str, float]: ...

    def sample(self, model: torch.nn.Module) -> np.ndarray | None: ...

    def phases(self) -> list[Phase]:
        return [Phase("model", self.loss)]


@dataclass
class TrainingResult:
    state_dict: dict[str, torch.Tensor]  # EMA weights when EMA is on
    history: list[dict[str, float]]  # one row per logged step, validation rows included
    resumed_from: int | None
    rank_checksums: list[float]  # sum of the weights on each process: equal under data parallelism


def train(
    task: TrainingTask, config: TrainingConfig, checkpoint_dir: str | Path, sample_fps: float = 8.0
) -> TrainingResult:
    """Train `task` to `config.steps`, resuming from the newest checkpoint in `checkpoint_dir` if allowed.

    With `num_processes > 1` the training runs in that many worker processes (data parallel); this process
    only waits, so a Kedro run is never repeated once per rank.
    """
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    run = mlflow.active_run()
    tracking = {"uri": mlflow.get_tracking_uri(), "run_id": run.info.run_id} if run else None
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.pt"
        args = (task, config, checkpoint_dir, tracking, result_path, sample_fps)
        launch_processes(_train_process, args, config.num_processes)
        result = torch.load(result_path, weights_only=False)
    return TrainingResult(**result)


def _train_process(task, config, checkpoint_dir, tracking, result_path, sample_fps) -> None:
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.gradient_accumulation_steps
    )
    if accelerator.device.type == "cpu" and accelerator.num_processes > 1:
        # Processes sharing the cores: more threads than cores makes OpenMP spin and every op crawl.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    try:
        _run(accelerator, task, config, checkpoint_dir, tracking, result_path, sample_fps)
    finally:
        # AcceleratorState is a per-process singleton: the next stage in this process configures it anew.
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


@dataclass
class _Optimisation:
    """The networks of a run and what updates them: per phase its parameters, optimiser and schedule; the
    EMA of the first phase's parameters."""

    model: torch.nn.Module
    phases: list[Phase]
    groups: list[list[torch.nn.Parameter]]
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[Any]
    ema: EMAModel | None

    def with_ema(self, accelerator: Accelerator, fn: Callable[[torch.nn.Module], Any]) -> Any:
        return _with_ema(self.ema, self.groups[0], self.model, accelerator, fn)


def _run(
    accelerator: Accelerator,
    task: TrainingTask,
    config: TrainingConfig,
    checkpoint_dir: Path,
    tracking: dict[str, str] | None,
    result_path: Path,
    fps: float,
) -> None:
    _check_batch_split(config, accelerator.num_processes)
    run = _prepare(accelerator, task, config)
    log = _MlflowLogger(tracking) if accelerator.is_main_process else None
    this_run = run_key(task.fingerprint, config)
    start, resumed_from, history = _resume(accelerator, task, config, checkpoint_dir, this_run)
    if start == 0:
        _record(history, log, 0, run.with_ema(accelerator, task.validate))
    progress = tqdm(
        range(start, config.steps),
        initial=start,
        total=config.steps,
        desc=task.name,
        disable=not accelerator.is_local_main_process,
    )
    for step in progress:
        step_logs = _train_step(accelerator, task, run, config, step)
        progress.set_postfix(loss=f"{step_logs.get('loss', float('nan')):.4f}")
        done = step + 1
        last = done == config.steps
        if done % config.log_every == 0 or last:
            _record(history, log, done, step_logs)
        if (config.validate_every and done % config.validate_every == 0) or last:
            _record(history, log, done, run.with_ema(accelerator, task.validate))
        if log and ((config.sample_every and done % config.sample_every == 0) or last):
            video = run.with_ema(accelerator, task.sample)
            if video is not None:
                log.video(video, f"samples/{task.name}/step_{done:07d}.gif", fps)
        if done % config.checkpoint_every == 0 or last:
            state = {"step": done, "run_key": this_run, "history": history}
            _save_checkpoint(accelerator, checkpoint_dir, state, config.checkpoints_total_limit)
    _save_result(accelerator, run, history, resumed_from, result_path)


def _check_batch_split(config: TrainingConfig, world: int) -> None:
    per_process = config.batch_size // world
    if per_process * world != config.batch_size or per_process % config.gradient_accumulation_steps:
        raise ValueError(
            f"batch_size {config.batch_size} must split evenly over {world} processes and "
            f"{config.gradient_accumulation_steps} accumulation steps"
        )


def _prepare(accelerator: Accelerator, task: TrainingTask, config: TrainingConfig) -> _Optimisation:
    """The task's networks, one AdamW and learning-rate schedule per phase, EMA, all handed to accelerate
    and registered for checkpointing."""
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = task.build_model()
    phases = task.phases()
    groups = [_phase_parameters(phase, model) for phase in phases]
    optimizers = [
        torch.optim.AdamW(
            params, lr=phase.learning_rate or config.learning_rate, weight_decay=config.weight_decay
        )
        for phase, params in zip(phases, groups, strict=True)
    ]
    # diffusers takes 2.9 s to import: only when training.
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    schedulers = [
        get_scheduler(
            config.lr_scheduler,
            optimizer,
            num_warmup_steps=config.warmup_steps,
            num_training_steps=config.steps,
        )
        for optimizer in optimizers
    ]
    ema = EMAModel(groups[0], decay=config.ema_decay, use_ema_warmup=True) if config.ema_decay else None
    # One network: DistributedDataParallel. Several trained in turns: DDP cannot follow which of them a
    # backward pass touched, so their gradients are averaged over processes by hand (_average_gradients).
    if len(phases) > 1:
        model = model.to(accelerator.device)
        optimizers = [accelerator.prepare_optimizer(optimizer) for optimizer in optimizers]
        accelerator.register_for_checkpointing(model)  # unprepared models are not saved otherwise
    else:
        model, optimizers[0] = accelerator.prepare(model, optimizers[0])
    # Stepped by hand once per optimizer step: accelerate would step a prepared scheduler once per process.
    for scheduler in schedulers:
        accelerator.register_for_checkpointing(scheduler)
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    return _Optimisation(model, phases, groups, optimizers, schedulers, ema)


def _resume(
    accelerator: Accelerator, task: TrainingTask, config: TrainingConfig, checkpoint_dir: Path, this_run: str
) -> tuple[int, int | None, list[dict[str, float]]]:
    """The step to start from, the step resumed from (None for a fresh run) and the curves so far."""
    latest = _latest_checkpoint(checkpoint_dir, this_run, accelerator) if config.resume == "latest" else None
    if latest is None:
        return 0, None, []
    accelerator.load_state(str(latest))
    state = json.loads((latest / STATE_FILE).read_text())
    logger.info("%s: resumed from %s at step %d of %d", task.name, latest.name, state["step"], config.steps)
    return state["step"], state["step"], state["history"]  # the curves so far: the result covers the run


def _train_step(
    accelerator: Accelerator, task: TrainingTask, run: _Optimisation, config: TrainingConfig, step: int
) -> dict[str, float]:
    """One optimiser step of every phase due at `step`; the schedules and EMA advance; returns the step's
    losses averaged over accumulation and processes, and the learning rate."""
    world, rank = accelerator.num_processes, accelerator.process_index
    indices = batch_indices(config.seed, step, config.batch_size, task.num_examples())[rank::world]
    many = len(run.phases) > 1
    step_logs: dict[str, float] = {}
    for index, (phase, optimizer, params) in enumerate(
        zip(run.phases, run.optimizers, run.groups, strict=True)
    ):
        if step % phase.every:
            continue
        # A phase's loss may reach other phases' networks (the student's loss passes through the
        # discriminator): start each phase from clean gradients.
        run.model.zero_grad(set_to_none=True)
        for micro, chunk in enumerate(np.array_split(indices, config.gradient_accumulation_steps)):
            with accelerator.accumulate(run.model):
                generator = torch.Generator().manual_seed(step_seed(config.seed, step, rank, micro, index))
                with accelerator.autocast():
                    loss, logs = phase.loss(run.model, task.batch(chunk, accelerator.device), generator)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    if many:
                        _average_gradients(accelerator, params)
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            for key, value in logs.items():
                step_logs[key] = step_logs.get(key, 0.0) + value / config.gradient_accumulation_steps
    for scheduler in run.schedulers:
        scheduler.step()
    if run.ema is not None:
        run.ema.step(run.groups[0])
    step_logs = _mean_over_processes(accelerator, step_logs)
    step_logs["learning_rate"] = run.schedulers[0].get_last_lr()[0]
    return step_logs


def _record(
    history: list[dict[str, float]], log: _MlflowLogger | None, step: int, values: dict[str, float]
) -> None:
    history.append({"step": step, **values})
    if log:
        log.metrics(values, step=step)


def _save_result(
    accelerator: Accelerator,
    run: _Optimisation,
    history: list[dict[str, float]],
    resumed_from: int | None,
    result_path: Path,
) -> None:
    """The trained (EMA) weights, the curves and every rank's weight checksum, written by rank 0:
    data-parallel ranks must end identical, and the checksums are the evidence."""
    checksum = sum(p.detach().double().sum() for p in accelerator.unwrap_model(run.model).parameters())
    checksums = accelerator.gather(checksum.view(1).to(accelerator.device)).tolist()
    if accelerator.is_main_process:
        weights = run.with_ema(accelerator, lambda m: {k: v.cpu() for k, v in m.state_dict().items()})
        result = {"state_dict": weights, "history": history, "resumed_from": resumed_from}
        torch.save({**result, "rank_checksums": checksums}, result_path)
    accelerator.wait_for_everyone()


def batch_indices(seed: int, step: int, batch_size: int, num_examples: int) -> np.ndarray:
    """The examples of a global step: consecutive slices of per-epoch permutations, a function of the step."""
    out: list[int] = []
    position = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(position + len(out), num_examples)
        permutation = np.random.default_rng([seed, epoch]).permutation(num_examples)
        out.extend(permutation[offset : offset + batch_size - len(out)].tolist())
    return np.asarray(out)


def step_seed(seed: int, step: int, rank: int, micro: int, phase: int = 0) -> int:
    return int(np.random.SeedSequence([seed, step, rank, micro, phase]).generate_state(1)[0])


def _phase_parameters(phase: Phase, model: torch.nn.Module) -> list[torch.nn.Parameter]:
    params = list(phase.parameters(model) if phase.parameters else model.parameters())
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError(f"training phase {phase.name!r} has no trainable parameters")
    return params


def _average_gradients(accelerator: Accelerator, params: list[torch.nn.Parameter]) -> None:
    if accelerator.num_processes == 1:
        return
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        param.grad.copy_(accelerator.reduce(param.grad, reduction="mean"))


def _with_ema(ema: EMAModel | None, params: list[torch.nn.Parameter], model, accelerator: Accelerator, fn):
    """Call fn on the unwrapped model with the EMA weights of `params` swapped in (and back out)."""
    unwrapped = accelerator.unwrap_model(model)
    if ema is None:
        return fn(unwrapped)
    ema.store(params)
    ema.copy_to(params)
    try:
        return fn(unwrapped)
    finally:
        ema.restore(params)


def _mean_over_processes(accelerator: Accelerator, logs: dict[str, float]) -> dict[str, float]:
    if accelerator.num_processes == 1 or not logs:
        return logs
    values = torch.tensor(list(logs.values()), device=accelerator.device)
    return dict(zip(logs, accelerator.reduce(values, reduction="mean").tolist(), strict=True))


def checkpoints(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a checkpoint is complete once its state file exists)."""
    found = [p for p in checkpoint_dir.glob(f"{CHECKPOINT_PREFIX}*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)))


def fingerprint(*parts: Any) -> str:
    """A short hash of arrays (by content) and JSON-able settings, for a task's `fingerprint`."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().cpu().numpy()
        if isinstance(part, np.ndarray):
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


# Learning-rate schedules that do not depend on the step count: a run with one of them can be extended.
EXTENDABLE_SCHEDULES = ("constant", "constant_with_warmup")


def run_key(fingerprint: str, config: TrainingConfig) -> str:
    """What a checkpoint must share to be resumed: the task's data and networks and every setting that
    changes the optimisation. Logging is left out, and so is the step count where the learning-rate schedule
    does not depend on it, so such a run can be extended."""
    extendable = {"checkpoint_every", "checkpoints_total_limit", "resume", "log_every"}
    extendable |= {"validate_every", "sample_every"}
    if config.lr_scheduler in EXTENDABLE_SCHEDULES:
        extendable.add("steps")
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in extendable}
    return hashlib.sha256(json.dumps([fingerprint, settings], sort_keys=True).encode()).hexdigest()[:16]


def _latest_checkpoint(checkpoint_dir: Path, key: str, accelerator: Accelerator) -> Path | None:
    """The newest checkpoint of this run; checkpoints of another run (other data or settings) are removed."""
    found = checkpoints(checkpoint_dir)
    mine = [p for p in found if json.loads((p / STATE_FILE).read_text()).get("run_key") == key]
    stale = [p for p in found if p not in mine]
    if stale:
        logger.info("Not resuming %d checkpoint(s) of another run (data or settings changed)", len(stale))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for path in stale:
            shutil.rmtree(path)
    accelerator.wait_for_everyone()
    return mine[-1] if mine else None


def _save_checkpoint(
    accelerator: Accelerator, checkpoint_dir: Path, state: dict[str, Any], limit: int
) -> None:
    """Write to a temporary folder, then rename: a kill mid-save never leaves a checkpoint looking whole."""
    final = checkpoint_dir / f"{CHECKPOINT_PREFIX}{state['step']:07d}"
    partial = checkpoint_dir / f".partial-{state['step']:07d}"
    accelerator.save_state(str(partial))
    # Every rank writes its own random states into `partial`: rename it only once all have finished.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps(state))
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in checkpoints(checkpoint_dir)[:-limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


class _MlflowLogger:
    """Logs to the Kedro run by id, so worker processes (which have no active run) log into it too."""

    def __init__(self, tracking: dict[str, str] | None):
        self._tracking = tracking
        self._client = mlflow.MlflowClient(tracking["uri"]) if tracking else None

    def metrics(self, values: dict[str, float], step: int) -> None:
        if self._client is None:
            return
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in values.items() if np.isfinite(value)]
        self._client.log_batch(self._tracking["run_id"], metrics=batch)

    def video(self, frames: np.ndarray, artifact: str, fps: float) -> None:
        if self._client is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact).name
            path.write_bytes(encode_gif(frames, fps))
            self._client.log_artifact(self._tracking["run_id"], str(path), str(Path(artifact).parent))


def config_from_params(params: dict[str, Any]) -> TrainingConfig:
    """A TrainingConfig from a parameters block, naming any key it does not know."""
    known = set(TrainingConfig.__dataclass_fields__)
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"unknown training parameters {sorted(unknown)}; known: {sorted(known)}")
    if params.get("mixed_precision") is False:
        # `dvc exp run -S` rewrites a parameter file as YAML 1.2, which leaves "no" unquoted; Kedro reads
        # YAML 1.1, where a bare no is False.
        params = {**params, "mixed_precision": "no"}
    return TrainingConfig(**params)
