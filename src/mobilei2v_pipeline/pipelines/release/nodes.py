"""Nodes of the release pipeline."""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import onnx
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mobilei2v_pipeline.models.config import LatentGrid
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.i2v import load_denoiser
from mobilei2v_pipeline.models.model_card import count_parameters
from mobilei2v_pipeline.onnx_runtime import by_precision
from mobilei2v_pipeline.pipelines.release.gate import gate_figures, judge
from mobilei2v_pipeline.pipelines.release.model_card import Program, model_card
from mobilei2v_pipeline.text import slug

logger = logging.getLogger(__name__)
# The run tags the project hook sets on every run (hooks.py) that a model version carries too.
RUN_TAGS = ("git_commit", "git_dirty", "data_version", "kedro_env", "seed")


def register_release(
    student2_model: dict[str, Any],
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    quantized_models: dict[str, Callable[[], onnx.ModelProto]],
    executorch_programs: dict[str, Callable[[], bytes]],
    executorch_quantized_programs: dict[str, Callable[[], bytes]],
    coreml_models: dict[str, Path],
    ai_hub_profile: pd.DataFrame,
    release: dict[str, Any],
    deployed: dict[str, Any],
    **reports: dict[str, float],
) -> tuple[dict[str, Any], str]:
    """Log every program to this run (release/onnx/<precision>/<graph>.onnx, release/executorch/
    <precision>/<graph>.pte, release/coreml/<graph>.mlpackage) with the torch student, register the student
    as a new version of `release.model_name` (the challenger), and tag the version with the deployed
    precision, the figures of export, evaluation, quantization and profiling (`reports`, by catalog name:
    `<stage>_metrics` and `<stage>_measured`), AI Hub's rows, and the run's commit and data version. The
    model card (model_card.md) is logged beside the programs and is the version's description.
    Returns the version's number, its key figures and which of them were measured on a clock; and the card."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("release needs an active MLflow run: run it through `kedro run` (kedro-mlflow)")
    client = MlflowClient()
    evaluation = reports["evaluation_metrics"] | reports["evaluation_measured"]
    others = [kv for name, kv in reports.items() if not name.startswith("evaluation_")]
    stages = {k: v for kv in others for k, v in kv.items()}
    measured = {k for name, kv in reports.items() if name.endswith("_measured") for k in kv}
    tags = version_tags(
        client.get_run(run.info.run_id).data.tags, evaluation, stages, ai_hub_profile, release, deployed
    )
    executorch = {f"fp32/{graph}": load for graph, load in executorch_programs.items()}
    executorch |= {
        "/".join(key.split("_")[::-1]): load for key, load in executorch_quantized_programs.items()
    }
    programs = _log_programs(by_precision(onnx_models, quantized_models), executorch, coreml_models)
    student = load_denoiser(student2_model)
    info = mlflow.pytorch.log_model(
        student,
        name="student",
        registered_model_name=release["model_name"],
        # MLflow's pt2 format takes one tensor input, the denoiser three: the module is pickled, and loads
        # with this package installed (the programs beside it load anywhere).
        serialization_format="pickle",
        # Stated, not inferred: inference imports the model to list its packages, which is slow.
        pip_requirements=[
            f"torch=={version('torch')}",
            f"mobilei2v-pipeline=={version('mobilei2v-pipeline')}",
        ],
    )
    number = int(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(release["model_name"], str(number), key, value)
    card = _describe_version(client, release, number, student, onnx_models, programs, tags, run.info.run_id)
    logger.info("Registered %s version %d with %d programs", release["model_name"], number, len(programs))
    figures = _figures(tags, key_figures(release))
    return {"version": number, "figures": figures, "measured": sorted(measured & set(figures))}, card


DESCRIPTION_CHARS = 5000  # what MLflow's registry stores of a version's description


def _describe_version(
    client: MlflowClient,
    release: dict[str, Any],
    number: int,
    student: MobileI2VDenoiser,
    onnx_models: dict[str, Callable[[], onnx.ModelProto]],
    programs: list[Program],
    tags: dict[str, str],
    run_id: str,
) -> str:
    """The model card, logged beside the programs and set as the version's description (cut to what the
    registry stores, pointing at the whole card)."""
    grid = LatentGrid(*_denoiser_grid(onnx_models["denoiser"]()))
    card = model_card(
        release["model_name"],
        number,
        student.config,
        grid,
        count_parameters(student),
        programs,
        tags,
        release["evaluation_figures"],
    )
    mlflow.log_text(card, "release/model_card.md")
    cut = f"\n\n(cut: the whole card is release/model_card.md of run {run_id})"
    description = card if len(card) <= DESCRIPTION_CHARS else card[: DESCRIPTION_CHARS - 80] + cut
    client.update_model_version(release["model_name"], str(number), description=description)
    return card


def _log_programs(
    onnx_graphs: dict[str, Callable[[], onnx.ModelProto]],
    executorch: dict[str, Callable[[], bytes]],
    coreml_models: dict[str, Path],
) -> list[Program]:
    """Log every program under release/ and describe each (keys "<precision>/<graph>")."""
    programs = []
    with tempfile.TemporaryDirectory() as tmp:
        for key, load in onnx_graphs.items():
            path = Path(tmp, "onnx", f"{key}.onnx")
            path.parent.mkdir(parents=True, exist_ok=True)
            onnx.save(load(), path)
            programs.append(_program("ONNX", key, path, tmp))
        for key, load in executorch.items():
            path = Path(tmp, "executorch", f"{key}.pte")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(load())
            programs.append(_program("ExecuTorch (XNNPACK)", key, path, tmp))
        for graph, package in sorted(coreml_models.items()):
            path = Path(tmp, "coreml", package.name)
            shutil.copytree(package, path)
            programs.append(_program("Core ML", f"fp16/{graph}", path, tmp))
        mlflow.log_artifacts(tmp, "release")
    return programs


def _program(target: str, key: str, path: Path, root: str) -> Program:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    precision, graph = key.split("/")
    size_mb = sum(f.stat().st_size for f in files) / 2**20
    return Program(target, precision, graph, f"release/{path.relative_to(root).as_posix()}", size_mb)


def _denoiser_grid(model: onnx.ModelProto) -> list[int]:
    """(frames, height, width) of the exported denoiser's static latent input."""
    latents = next(i for i in model.graph.input if i.name == "latents")
    return [d.dim_value for d in latents.type.tensor_type.shape.dim[2:]]


def gate_release(
    challenger: dict[str, Any], release: dict[str, Any]
) -> tuple[dict[str, float], dict[str, float], pd.DataFrame]:
    """Judge the challenger against the version holding the champion alias; on promotion move the alias to
    the challenger. The challenger's version is tagged with the decision and why either way. Inside a
    `dvc exp run` (DVC_EXP_NAME set) the challenger is judged but never promoted: experiments compare.

    Returns release.json's numbers (`promoted`, `passed_gate`, both versions, both sides' key figures that
    no clock sets), both sides' measured key figures (latencies), and the gate's checks.
    """
    client = MlflowClient()
    name, alias = release["model_name"], release["champion_alias"]
    champion = champion_version(client, name, alias)
    champion_figures = _figures(champion.tags, key_figures(release)) if champion else None
    decision = judge(challenger["figures"], champion_figures, release["gate"])
    experiment = os.environ.get("DVC_EXP_NAME")
    promoted = decision.promoted and not experiment
    version = str(challenger["version"])
    verdict = "promoted" if decision.promoted else "rejected"
    client.set_model_version_tag(
        name, version, "decision", f"experiment, would be {verdict}" if experiment else verdict
    )
    client.set_model_version_tag(name, version, "decision_reason", decision.reason[:5000])
    compared_with = str(champion.version) if champion else "none"
    client.set_model_version_tag(name, version, "compared_with", compared_with)
    if promoted:
        client.set_registered_model_alias(name, alias, version)
    logger.info("%s version %s %s", name, version, decision.reason)
    numbers = {
        "promoted": int(promoted),
        "passed_gate": int(decision.promoted),
        "challenger_version": challenger["version"],
        "champion_version": int(champion.version) if champion else 0,
    }
    sides = {"challenger": challenger["figures"], "champion": champion_figures or {}}
    figures = {f"{side}_{k}": v for side, kv in sides.items() for k, v in kv.items() if math.isfinite(v)}
    measured = {f"{side}_{k}" for side in sides for k in challenger["measured"]}
    numbers |= {k: v for k, v in figures.items() if k not in measured}
    return numbers, {k: v for k, v in figures.items() if k in measured}, decision.checks


def champion_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None when the model or the alias does not exist yet."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return client.get_model_version(name, aliases[alias]) if alias in aliases else None


def key_figures(release: dict[str, Any]) -> list[str]:
    """The figures release.json shows for both sides: the headline figures and those the gate reads."""
    return list(dict.fromkeys([*release["headline"], *gate_figures(release["gate"])]))


def _figures(tags: dict[str, str], names: list[str]) -> dict[str, float]:
    return {k: float(tags[k]) for k in names if k in tags}


def version_tags(
    run_tags: dict[str, str],
    evaluation: dict[str, float],
    stages: dict[str, float],
    ai_hub_profile: pd.DataFrame,
    release: dict[str, Any],
    deployed: dict[str, Any],
) -> dict[str, str]:
    """What a model version says about itself: deployed precision and steps, the configured `evaluation`
    figures, every figure of the other stages (quantization, profiling), AI Hub's status per device, commit
    and data."""
    tags = {"precision": deployed["precision"], "steps": str(deployed["steps"])}
    tags |= {k: run_tags[k] for k in RUN_TAGS if k in run_tags}
    evaluation_figures = [*release["evaluation_figures"], *gate_figures(release["gate"])]
    tags |= {k: f"{evaluation[k]:.6g}" for k in evaluation_figures if k in evaluation}
    tags |= {k: f"{v:.6g}" for k, v in stages.items()}
    for row in ai_hub_profile.to_dict("records"):
        tags[f"qai_hub/{slug(row['device'])}/{row['precision']}/{row['component']}"] = str(row["status"])
    return tags
