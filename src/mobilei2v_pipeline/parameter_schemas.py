"""One schema per parameter file, checked when a run starts, before any node runs.

A value of the wrong type, out of range or under a key no schema knows stops the run with one line naming the
key, the value and what is allowed, instead of a traceback from a node minutes later. The schemas check types
and ranges, not exact values; the models are strict, so a YAML 1.1 string such as `1e-3` is not taken for a
number. The nodes still receive the plain dictionaries: the schemas only check.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from omegaconf.errors import ConfigTypeError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from mobilei2v_pipeline.errors import ParameterError
from mobilei2v_pipeline.models.config import PRESETS, DenoiserConfig
from mobilei2v_pipeline.video.synthetic import REJECT_KINDS

# ONNX Runtime's QuantType and CalibrationMethod names (tests/test_parameter_schemas.py keeps them in step);
# onnxruntime itself takes seconds to import.
QUANT_TYPES = Literal["QInt8", "QUInt8", "QFLOAT8E4M3FN", "QInt16", "QUInt16", "QInt4", "QUInt4"]
CALIBRATION_METHODS = Literal["MinMax", "Entropy", "Percentile", "Distribution"]
# The graphs the export stage writes (pipelines/export/graphs.py OUTPUTS).
GRAPHS = Literal["denoiser", "decoder", "light_decoder", "encoder", "light_encoder"]
X264_PRESETS = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"
]


class Schema(BaseModel):
    """Strict types and no unknown keys: a typo in a key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _pair(low: float | None = None, high: float | None = None) -> Any:
    """A [low, high] list with low < high, each within the bounds."""
    return Annotated[
        list[Annotated[float, Field(ge=low, le=high)]],
        Field(min_length=2, max_length=2),
        AfterValidator(_increasing),
    ]


def _increasing(pair: list[float]) -> list[float]:
    if pair[0] >= pair[1]:
        raise ValueError("should be [low, high] with low < high")
    return pair


def _mapping(hint: str) -> BeforeValidator:
    """Refuse a value that is not a mapping with a hint of what it maps (pydantic only says "dictionary")."""

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"should be a mapping of {hint}")
        return value

    return BeforeValidator(check)


def _model_preset(name: str) -> str:
    if name not in PRESETS:
        raise ValueError(f"should be a model preset: {', '.join(sorted(PRESETS))}")
    return name


def _vae_preset(vae: Any) -> Any:
    """A preset name of models/autoencoder.py, or a dict of the VAE's constructor arguments."""
    if isinstance(vae, dict):
        return vae
    from mobilei2v_pipeline.models.autoencoder import VAE_PRESETS  # imports torch: only when a name is given

    if vae not in VAE_PRESETS:
        raise ValueError(
            f"should be a VAE preset ({', '.join(sorted(VAE_PRESETS))}) or a dict of its arguments"
        )
    return vae


def _denoiser_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(DenoiserConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"{unknown} are not DenoiserConfig fields: {', '.join(DenoiserConfig.__dataclass_fields__)}"
        )
    return overrides


LocalPath = str | None  # a local path, or null for none


# --- shared by every stage that trains ---------------------------------------------------------------------


class Training(Schema):
    """training/loop.py's TrainingConfig."""

    steps: PositiveInt
    batch_size: PositiveInt
    learning_rate: PositiveFloat
    warmup_steps: NonNegativeInt = 0
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine", "polynomial"] = (
        "constant_with_warmup"
    )
    weight_decay: NonNegativeFloat = 0.0
    max_grad_norm: PositiveFloat = 1.0
    gradient_accumulation_steps: PositiveInt = 1
    # A bare `no` in a file `dvc exp run -S` rewrote reads as False (YAML 1.1): it means "no".
    mixed_precision: Literal["no", "bf16", "fp16", False] = "no"
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.0
    checkpoint_every: PositiveInt = 100
    checkpoints_total_limit: PositiveInt = 2
    resume: Literal["latest", "never"] = "latest"
    log_every: PositiveInt = 1
    validate_every: NonNegativeInt = 0
    sample_every: NonNegativeInt = 0
    num_processes: PositiveInt = 1
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _batch_splits(self) -> Training:
        if self.batch_size % (self.num_processes * self.gradient_accumulation_steps):
            raise ValueError(
                f"batch_size={self.batch_size} should split evenly over num_processes={self.num_processes} x "
                f"gradient_accumulation_steps={self.gradient_accumulation_steps}"
            )
        return self


class Timesteps(Schema):
    mean: float
    std: PositiveFloat


# --- parameters.yml ----------------------------------------------------------------------------------------


class RunParameters(Schema):
    seed: NonNegativeInt


# --- parameters_data_curation.yml --------------------------------------------------------------------------


class Synthetic(Schema):
    seed: NonNegativeInt
    num_videos: PositiveInt
    width: Annotated[int, Field(ge=16)]
    height: Annotated[int, Field(ge=16)]
    fps: PositiveFloat
    seconds: PositiveFloat
    min_speed: PositiveFloat
    max_speed: PositiveFloat
    num_sprites: NonNegativeInt
    rejects: dict[Literal[REJECT_KINDS], NonNegativeInt]
    crf: Annotated[int, Field(ge=0, le=51)]
    preset: X264_PRESETS
    keyint: PositiveInt

    @model_validator(mode="after")
    def _room_for_normal_videos(self) -> Synthetic:
        if self.num_videos <= sum(self.rejects.values()):
            raise ValueError(
                f"num_videos={self.num_videos} should exceed the {sum(self.rejects.values())} rejects"
            )
        return self


class Clips(Schema):
    frames_per_clip: Annotated[int, Field(ge=2)]  # two frames at least, or a clip has no motion
    frame_interval: PositiveInt
    clips_per_video: PositiveInt
    height: PositiveInt
    width: PositiveInt


class Filters(Schema):
    min_brightness: Annotated[float, Field(ge=0, le=255)]
    max_brightness: Annotated[float, Field(ge=0, le=255)]
    min_contrast: NonNegativeFloat
    min_sharpness: NonNegativeFloat
    min_motion: NonNegativeFloat
    max_motion: PositiveFloat
    min_scene_cut_score: Annotated[float, Field(ge=-1, le=1)]
    max_frame_gap_ms: PositiveFloat


class Split(Schema):
    val_fraction: Annotated[float, Field(gt=0, lt=1)]
    salt: str
    near_duplicate_max_distance: Annotated[int, Field(ge=0, le=64)]


class Ray(Schema):
    address: str | None  # auto, ray://host:port, host:port; None: a Ray of the run's own
    num_cpus_per_task: PositiveFloat
    runtime_env: dict[str, Any] | None


class Curation(Schema):
    clips: Clips
    min_short_side: PositiveInt
    motion_reference_short_side: PositiveInt
    filters: Filters
    split: Split
    previews: NonNegativeInt
    engine: Literal["local", "ray"]
    workers: NonNegativeInt  # 0: one per core of this machine
    ray: Ray


class ClipValidation(Schema):
    min_clips_per_split: PositiveInt
    ranges: dict[str, Annotated[list[float | None], Field(min_length=2, max_length=2)]]


class DataCurationParameters(Schema):
    synthetic: Synthetic
    curation: Curation
    clip_validation: ClipValidation


# --- parameters_autoencoder.yml ----------------------------------------------------------------------------


class LightAutoencoder(Schema):
    widths: Annotated[list[PositiveInt], Field(min_length=1)]
    training: Training


class Autoencoder(Schema):
    vae: Annotated[Any, AfterValidator(_vae_preset)]
    pretrained_path: LocalPath
    kl_weight: NonNegativeFloat
    temporal_loss_weight: NonNegativeFloat
    crop_size: PositiveInt | None
    encode_batch_size: PositiveInt
    evaluation_clips: PositiveInt | None
    latent_scale: Literal["per_channel", "shared"]
    training: Training
    light: LightAutoencoder


class AutoencoderParameters(Schema):
    autoencoder: Autoencoder


# --- parameters_teacher.yml --------------------------------------------------------------------------------


class Sampling(Schema):
    steps: PositiveInt
    shift: PositiveFloat


class Teacher(Schema):
    preset: Annotated[str, AfterValidator(_model_preset)]
    denoiser: Annotated[dict[str, Any], AfterValidator(_denoiser_overrides)]
    pretrained_path: LocalPath
    gradient_checkpointing: bool
    timesteps: Timesteps
    sampling: Sampling
    validation_examples: PositiveInt
    sample_examples: PositiveInt
    training: Training


class TeacherParameters(Schema):
    teacher: Teacher


# --- parameters_distillation.yml ---------------------------------------------------------------------------


class Trajectories(Schema):
    seeds_per_clip: PositiveInt
    motion_range: _pair(low=0) | None
    val_clips: PositiveInt
    val_seeds_per_clip: PositiveInt
    seed: NonNegativeInt
    batch_size: PositiveInt


class Stage1(Schema):
    training: Training


class LossWeights(Schema):
    dmd: NonNegativeFloat
    adversarial: NonNegativeFloat
    regression: NonNegativeFloat


class Discriminator(Schema):
    blocks: Annotated[list[NonNegativeInt], Field(min_length=1)]
    width: PositiveInt


class UpdateEvery(Schema):
    student: PositiveInt
    fake_score: PositiveInt
    discriminator: PositiveInt


class LearningRates(Schema):
    fake_score: PositiveFloat
    discriminator: PositiveFloat


class Stage2(Schema):
    loss_weights: LossWeights
    renoise_timesteps: _pair(low=0, high=1)
    fake_score_timesteps: Timesteps
    discriminator: Discriminator
    update_every: UpdateEvery
    learning_rates: LearningRates
    training: Training


class Distillation(Schema):
    student_steps: PositiveInt
    sample_examples: PositiveInt
    gradient_checkpointing: bool
    trajectories: Trajectories
    stage1: Stage1
    stage2: Stage2


class DistillationParameters(Schema):
    distillation: Distillation


# --- parameters_evaluation.yml -----------------------------------------------------------------------------

Row = Annotated[str, Field(pattern=r"^(teacher|student1|student2)_(\d+|\{N\})step$")]  # N: teacher's steps


class Fvd(Schema):
    i3d_path: LocalPath


class Evaluation(Schema):
    clips: PositiveInt
    motion_scores: Annotated[list[PositiveFloat], Field(min_length=1)]
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)]
    teacher_steps: list[PositiveInt]
    student1_steps: list[PositiveInt]
    student2_steps: list[PositiveInt]
    latency_examples: PositiveInt
    latency_warmup: NonNegativeInt
    latency_repeats: PositiveInt
    threads: NonNegativeInt
    grid_rows: list[Row]
    motion_gif_rows: list[Row]
    fvd: Fvd


class EvaluationParameters(Schema):
    evaluation: Evaluation


# --- parameters_export.yml ---------------------------------------------------------------------------------


class Executorch(Schema):
    graphs: list[GRAPHS]
    repeats: PositiveInt


class CoreML(Schema):
    graphs: list[GRAPHS]


class Export(Schema):
    opset: Annotated[int, Field(ge=18)]  # the dynamo exporter's minimum
    samples: PositiveInt
    seed: NonNegativeInt
    mobile_attention_parity: dict[
        Annotated[str, AfterValidator(_model_preset)],
        Annotated[list[PositiveInt], Field(min_length=3, max_length=3)] | None,
    ]
    executorch: Executorch
    coreml: CoreML


class ExportParameters(Schema):
    export: Export


# --- parameters_quantization.yml ---------------------------------------------------------------------------


class PrecisionTypes(Schema):
    weights: QUANT_TYPES
    activations: QUANT_TYPES
    format: Literal["QDQ", "QOperator"] = "QDQ"  # QDQ for QNN and AI Hub; QOperator for ORT's CPU provider


class Calibration(Schema):
    val_clips: PositiveInt
    held_out_clips: PositiveInt
    motion_scores: Annotated[list[PositiveFloat], Field(min_length=1)]
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)]
    steps: Annotated[list[PositiveInt], Field(min_length=1)]

    @model_validator(mode="after")
    def _clips_left_to_calibrate(self) -> Calibration:
        if self.val_clips <= self.held_out_clips:
            raise ValueError(f"val_clips={self.val_clips} should exceed held_out_clips={self.held_out_clips}")
        return self


class Quantization(Schema):
    graphs: list[Literal["denoiser"]]  # only the denoiser's inputs are captured for calibration
    precisions: Annotated[
        dict[Annotated[str, Field(pattern=r"^[a-z0-9]+$")], PrecisionTypes],
        _mapping(
            "precision names to {weights, activations}, e.g. w8a8: {weights: QInt8, activations: QUInt8}"
        ),
        Field(min_length=1),
    ]
    keep_float_ops: list[str]
    keep_float_modules: list[str]
    executorch_dynamic_modules: list[str]
    per_channel: bool
    calibrate_method: CALIBRATION_METHODS
    calibration_budget_mb: PositiveFloat
    deployed_steps: PositiveInt
    latency_repeats: PositiveInt
    threads: NonNegativeInt
    calibration: Calibration


class QuantizationParameters(Schema):
    quantization: Quantization


# --- parameters_profiling.yml ------------------------------------------------------------------------------


class Deployed(Schema):
    precision: str
    steps: PositiveInt


class OnnxRuntimeProfiling(Schema):
    warmup: NonNegativeInt
    repeats: PositiveInt
    profiled_runs: PositiveInt
    top_operators: PositiveInt
    threads: NonNegativeInt


class QaiHub(Schema):
    devices: list[str]
    models: list[Annotated[str, Field(pattern=r"^[a-z0-9]+/[a-z_]+$")]]  # "<precision>/<graph>"
    target_runtime: str
    compile_options: str
    profile_options: str
    inference_samples: PositiveInt
    require_hub: bool
    connect_timeout_s: PositiveFloat
    job_timeout_s: PositiveFloat


class Profiling(Schema):
    deployed: Deployed
    onnxruntime: OnnxRuntimeProfiling
    qai_hub: QaiHub


class ProfilingParameters(Schema):
    profiling: Profiling


# --- parameters_release.yml --------------------------------------------------------------------------------


class QualityCheck(Schema):
    tolerance: NonNegativeFloat
    lower_is_better: bool = False


class Gate(Schema):
    quality: dict[str, QualityCheck]
    latency_budgets_ms: dict[str, PositiveFloat]


class Release(Schema):
    model_name: Annotated[str, Field(min_length=1)]
    champion_alias: Annotated[str, Field(min_length=1)]
    evaluation_figures: list[str]
    headline: list[str]
    gate: Gate


class ReleaseParameters(Schema):
    release: Release


# --- all of them -------------------------------------------------------------------------------------------

SCHEMAS: dict[str, type[Schema]] = {
    "parameters.yml": RunParameters,
    "parameters_data_curation.yml": DataCurationParameters,
    "parameters_autoencoder.yml": AutoencoderParameters,
    "parameters_teacher.yml": TeacherParameters,
    "parameters_distillation.yml": DistillationParameters,
    "parameters_evaluation.yml": EvaluationParameters,
    "parameters_export.yml": ExportParameters,
    "parameters_quantization.yml": QuantizationParameters,
    "parameters_profiling.yml": ProfilingParameters,
    "parameters_release.yml": ReleaseParameters,
}


class Parameters(
    RunParameters,
    DataCurationParameters,
    AutoencoderParameters,
    TeacherParameters,
    DistillationParameters,
    EvaluationParameters,
    ExportParameters,
    QuantizationParameters,
    ProfilingParameters,
    ReleaseParameters,
):
    """Every parameter file of an env, merged, with the checks that span files."""

    @model_validator(mode="after")
    def _across_files(self) -> Parameters:
        teacher_steps, student_steps = self.teacher.sampling.steps, self.distillation.student_steps
        if teacher_steps % student_steps:
            raise ValueError(
                f"distillation.student_steps={student_steps}: should divide "
                f"teacher.sampling.steps={teacher_steps}, so the teacher passes every student time"
            )
        precisions = {"fp32", *self.quantization.precisions}
        used = {"profiling.deployed.precision": self.profiling.deployed.precision} | {
            f"profiling.qai_hub.models[{i}]": model.split("/")[0]
            for i, model in enumerate(self.profiling.qai_hub.models)
        }
        for key, precision in used.items():
            if precision not in precisions:
                raise ValueError(
                    f"{key}: precision {precision!r} should be fp32 or one of quantization.precisions "
                    f"({', '.join(sorted(precisions - {'fp32'}))})"
                )
        return self


def check_parameters(params: dict[str, Any]) -> None:
    """Raise `ParameterError` with one line about the first value the schemas refuse."""
    try:
        Parameters.model_validate(params)
    except ValidationError as error:
        errors = error.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ParameterError(describe(errors[0]) + more) from None


def describe(error: ErrorDetails) -> str:
    """One line: the dotted key, the value, what is allowed."""
    key = ".".join(str(part) for part in error["loc"])
    allowed = error["msg"].removeprefix("Value error, ").replace("Input should", "should", 1)
    if error["type"] == "missing":
        return f"parameter {key} is missing"
    if error["type"] == "extra_forbidden":
        return f"parameter {key}={error['input']!r}: not a known key (a typo?)"
    if not key:  # a check across files, which names its keys
        return f"parameter {allowed}"
    if isinstance(error["input"], dict):  # a check across keys, which names them
        return f"parameter {key}: {allowed}"
    return f"parameter {key}={error['input']!r}: {allowed}"


def run_parameters(loader) -> dict[str, Any]:
    """The parameters a run with this config loader gets (its `--params` included).

    OmegaConf refuses to merge a `--params` list where the config has a mapping (or the reverse) with an
    error that names no key; such a value is put in place here instead, for the schema to name.
    """
    try:
        return loader["parameters"]
    except ConfigTypeError:
        base = copy.copy(loader)
        base.runtime_params = {}
        return merge_params(base["parameters"], loader.runtime_params)


def merge_params(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`params` with `overrides` in place, mappings merged key by key and anything else replaced."""
    merged = dict(params)
    for key, value in overrides.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge_params(merged[key], value) if both else value
    return merged
