"""The shared training loop on a toy regression task: learning, checkpoints, exact resume, two processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mobilei2v_pipeline.training.loop import (
    Phase,
    TrainingConfig,
    TrainingTask,
    batch_indices,
    checkpoints,
    config_from_params,
    train,
)


class ToyTask(TrainingTask):
    """y = X w; the loss adds input noise from the step's generator, so resume must replay it exactly."""

    name = "toy"
    fingerprint = "toy-v1"

    def __init__(self, crash_at_step: int | None = None):
        rng = np.random.default_rng(0)
        self.x = torch.tensor(rng.normal(size=(64, 4)), dtype=torch.float32)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        self.crash_at_step = crash_at_step
        self.calls = 0

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Linear(4, 1)

    def num_examples(self) -> int:
        return len(self.x)

    def batch(self, indices, device):
        return {"x": self.x[indices].to(device), "y": self.y[indices].to(device)}

    def loss(self, model, batch, generator):
        self.calls += 1
        if self.crash_at_step is not None and self.calls > self.crash_at_step:
            raise KeyboardInterrupt("killed")
        x = batch["x"] + 0.01 * torch.randn(batch["x"].shape, generator=generator)
        loss = torch.nn.functional.mse_loss(model(x), batch["y"])
        return loss, {"loss": loss.item()}

    def validate(self, model):
        with torch.no_grad():
            return {"val_loss": torch.nn.functional.mse_loss(model(self.x), self.y).item()}

    def sample(self, model):
        return None


class TwoNetworkTask(ToyTask):
    """Network `a` learns the toy regression every step; `b` has its own optimiser every second step and a
    loss with zero gradient, while a's loss pushes gradients into b: b must never move."""

    name = "two_networks"

    def __init__(self, crash_at_step: int | None = None):
        super().__init__(crash_at_step)
        self.b_updates = 0

    def build_model(self) -> torch.nn.Module:
        return torch.nn.ModuleDict({"a": torch.nn.Linear(4, 1), "b": torch.nn.Linear(4, 1)})

    def phases(self) -> list[Phase]:
        return [
            Phase("a", self.loss_a, lambda m: m["a"].parameters()),
            Phase("b", self.loss_b, lambda m: m["b"].parameters(), every=2, learning_rate=1.0),
        ]

    def loss_a(self, model, batch, generator):
        loss, logs = self.loss(lambda x: model["a"](x), batch, generator)
        return loss + 100 * model["b"](batch["x"]).mean(), logs

    def loss_b(self, model, batch, generator):
        self.b_updates += 1
        return 0 * model["b"](batch["x"]).sum(), {"b_loss": 0.0}

    def validate(self, model):
        return super().validate(model["a"])


def _config(**overrides) -> TrainingConfig:
    base = {"steps": 30, "batch_size": 8, "learning_rate": 0.3, "warmup_steps": 5, "ema_decay": 0.5}
    return TrainingConfig(**{**base, "checkpoint_every": 10, "checkpoints_total_limit": 2, **overrides})


def test_loss_falls_and_checkpoints_are_kept_up_to_the_limit(tmp_path: Path):
    result = train(ToyTask(), _config(), tmp_path)
    val = [row["val_loss"] for row in result.history if "val_loss" in row]
    assert val[-1] < 0.1 * val[0]
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-0000020", "checkpoint-0000030"]
    assert result.resumed_from is None and len(result.rank_checksums) == 1


def test_a_killed_run_resumes_from_its_last_checkpoint_and_ends_identical(tmp_path: Path, caplog):
    uninterrupted = train(ToyTask(), _config(), tmp_path / "a")

    with pytest.raises(KeyboardInterrupt):
        train(ToyTask(crash_at_step=25), _config(), tmp_path / "b")
    assert [p.name for p in checkpoints(tmp_path / "b")] == ["checkpoint-0000010", "checkpoint-0000020"]
    with caplog.at_level("INFO"):
        resumed = train(ToyTask(), _config(), tmp_path / "b")

    assert resumed.resumed_from == 20
    assert "resumed from checkpoint-0000020 at step 20" in caplog.text
    assert resumed.history == uninterrupted.history  # the curves cover the whole run
    for key, value in uninterrupted.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[key], value, rtol=0, atol=0)


def test_checkpoints_of_another_run_are_not_resumed(tmp_path: Path):
    train(ToyTask(), _config(steps=20), tmp_path)
    extended = train(ToyTask(), _config(steps=30), tmp_path)
    assert extended.resumed_from == 20  # more steps: the same run, extended
    changed = train(ToyTask(), _config(steps=30, learning_rate=0.1), tmp_path)
    assert changed.resumed_from is None
    other_data = ToyTask()
    other_data.fingerprint = "toy-v2"
    assert train(other_data, _config(steps=30, learning_rate=0.1), tmp_path).resumed_from is None


def test_a_schedule_that_ends_at_the_last_step_is_resumed_but_never_extended(tmp_path: Path):
    cosine = train(ToyTask(), _config(steps=20, lr_scheduler="cosine"), tmp_path)
    rates = [row["learning_rate"] for row in cosine.history if "learning_rate" in row]
    assert rates[-1] == pytest.approx(0.0, abs=1e-12) and max(rates) == pytest.approx(0.3)
    # Its learning rate at every step depends on the step count: 30 steps are another run.
    assert train(ToyTask(), _config(steps=30, lr_scheduler="cosine"), tmp_path).resumed_from is None


def test_resume_never_starts_again(tmp_path: Path):
    train(ToyTask(), _config(steps=10), tmp_path)
    assert train(ToyTask(), _config(steps=10, resume="never"), tmp_path).resumed_from is None


def test_two_processes_train_data_parallel_and_end_with_the_same_weights(tmp_path: Path):
    result = train(ToyTask(), _config(num_processes=2, ema_decay=0.0), tmp_path)
    assert len(result.rank_checksums) == 2
    assert result.rank_checksums[0] == result.rank_checksums[1]
    val = [row["val_loss"] for row in result.history if "val_loss" in row]
    assert val[-1] < 0.1 * val[0]


def test_batches_are_a_function_of_the_step():
    first = [batch_indices(3, step, 8, 20) for step in range(5)]
    assert all(len(b) == 8 for b in first)
    np.testing.assert_array_equal(np.sort(np.concatenate(first[:5])[:20]), np.arange(20))  # an epoch each
    np.testing.assert_array_equal(batch_indices(3, 4, 8, 20), first[4])


def test_unknown_training_parameters_are_named():
    with pytest.raises(ValueError, match="unknown training parameters \\['lr'\\]"):
        config_from_params({"steps": 1, "batch_size": 1, "learning_rate": 1.0, "lr": 2})


def test_a_bare_no_from_a_file_dvc_rewrote_means_no_mixed_precision():
    # `dvc exp run -S` writes `mixed_precision: no` unquoted; YAML 1.1 (Kedro) reads it as False.
    config = config_from_params({"steps": 1, "batch_size": 1, "learning_rate": 1.0, "mixed_precision": False})
    assert config.mixed_precision == "no"


def test_phases_have_their_own_optimisers_and_update_intervals(tmp_path: Path):
    torch.manual_seed(0)
    initial_b = TwoNetworkTask().build_model()["b"].state_dict()  # the loop seeds the same way
    task = TwoNetworkTask()
    result = train(task, _config(steps=20), tmp_path)
    val = [row["val_loss"] for row in result.history if "val_loss" in row]
    assert val[-1] < 0.1 * val[0]
    assert task.b_updates == 10
    for key, value in initial_b.items():  # a's gradients into b never reach b's optimiser
        torch.testing.assert_close(result.state_dict[f"b.{key}"], value, rtol=0, atol=0)
    b_logged = [row for row in result.history if "b_loss" in row]
    assert [row["step"] for row in b_logged][:2] == [1, 3]


def test_a_killed_run_with_phases_resumes_identical(tmp_path: Path):
    uninterrupted = train(TwoNetworkTask(), _config(), tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train(TwoNetworkTask(crash_at_step=25), _config(), tmp_path / "b")
    resumed = train(TwoNetworkTask(), _config(), tmp_path / "b")
    assert resumed.resumed_from == 20
    for key, value in uninterrupted.state_dict.items():
        torch.testing.assert_close(resumed.state_dict[key], value, rtol=0, atol=0)


def test_phases_train_data_parallel_in_two_processes(tmp_path: Path):
    result = train(TwoNetworkTask(), _config(num_processes=2, ema_decay=0.0), tmp_path)
    assert result.rank_checksums[0] == result.rank_checksums[1]
