"""The parameter schemas: every env's config passes, a bad value stops `kedro run` at once with one line."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import get_args

import pytest
import yaml
from conftest import REPO, kedro_cli
from kedro.config import OmegaConfigLoader

from mobilei2v_pipeline.errors import ParameterError
from mobilei2v_pipeline.parameter_schemas import (
    CALIBRATION_METHODS,
    GRAPHS,
    QUANT_TYPES,
    SCHEMAS,
    check_parameters,
    merge_params,
    run_parameters,
)
from mobilei2v_pipeline.settings import CONFIG_LOADER_ARGS


def _loader(env: str, runtime_params: dict | None = None) -> OmegaConfigLoader:
    return OmegaConfigLoader(str(REPO / "conf"), env=env, runtime_params=runtime_params, **CONFIG_LOADER_ARGS)


@pytest.mark.parametrize("env", ["base", "smoke", "paper", "paper_check"])
def test_every_env_passes_the_schemas(env):
    check_parameters(_loader(env)["parameters"])


# What paper_check may set otherwise than paper: counts (videos, clips, steps, examples, samples, repeats),
# what the counts force (the split fraction of two videos, one teacher step count per row), where its data
# lives, and the model it registers. Every other setting of paper's is checked to be paper_check's too.
PAPER_CHECK_CUTS = {
    "synthetic": {"seed", "num_videos", "rejects"},
    "curation": {"split.val_fraction"},
    "clip_validation": {"min_clips_per_split"},
    "autoencoder": {"evaluation_clips", "pretrained_path", "light.training"},
    "teacher": {"pretrained_path", "sampling.steps", "validation_examples", "sample_examples", "training"},
    "distillation": {"sample_examples", "trajectories", "stage1.training", "stage2.training"},
    "evaluation": {"clips", "motion_scores", "seeds", "teacher_steps", "student1_steps", "student2_steps"}
    | {"latency_examples", "latency_warmup", "grid_rows"},
    "export": {"samples", "executorch.repeats"},
    "quantization": {"latency_repeats", "calibration"},
    "profiling": {"onnxruntime"},
    "release": {"model_name"},
}
TRAINING_KEPT = ("learning_rate", "mixed_precision", "ema_decay", "gradient_accumulation_steps", "seed")


def _flat(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _cut(key: str) -> bool:
    top, _, rest = key.partition(".")
    if "training." in rest and rest.endswith(TRAINING_KEPT):
        return False  # the training recipe is the paper's, only its lengths are cut
    return any(rest == cut or rest.startswith(cut + ".") for cut in PAPER_CHECK_CUTS.get(top, ()))


def test_paper_check_is_paper_with_only_counts_cut_and_its_data_apart():
    paper, check = _flat(_loader("paper")["parameters"]), _flat(_loader("paper_check")["parameters"])
    differ = {k for k in paper.keys() | check.keys() if paper.get(k) != check.get(k)}
    assert {k for k in differ if not _cut(k)} == set()
    assert check["teacher.preset"] == "paper" and check["autoencoder.vae"] == "ltx"
    assert (check["curation.clips.height"], check["curation.clips.width"]) == (720, 1280)
    assert "random" in check["autoencoder.pretrained_path"].lower()
    paths = [v for k, v in check.items() if k.endswith("pretrained_path")]
    catalog = _flat(_loader("paper_check")["catalog"])
    paths += [v for k, v in catalog.items() if k.endswith((".filepath", ".path"))]
    assert len(paths) > 40 and [p for p in paths if p and not p.startswith("data/paper_check/")] == []


def test_a_paper_check_session_resolves_its_catalog_under_its_own_data(project: Path):
    """The run's hooks read conf/local too (credentials); the catalog must still use paper_check's globals."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    (project / "conf/local/credentials.yml").write_text('qai_hub:\n  api_token: ""\n')
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="paper_check") as session:
        catalog = session.load_context().catalog
        clip_table = Path(str(catalog["clip_table"]._filepath)).relative_to(project)
    assert clip_table == Path("data/paper_check/03_primary/clip_table.parquet")


def test_each_parameter_file_has_its_schema():
    files = {path.name: path for path in (REPO / "conf/base").glob("parameters*.yml")}
    assert set(files) == set(SCHEMAS)
    params = _loader("base")["parameters"]  # resolved: a file may interpolate its own values
    for name, schema in SCHEMAS.items():
        schema.model_validate({key: params[key] for key in yaml.safe_load(files[name].read_text())})


def test_the_schemas_name_the_values_onnxruntime_and_the_export_know():
    from onnxruntime.quantization import CalibrationMethod, QuantType

    from mobilei2v_pipeline.pipelines.export.graphs import OUTPUTS

    assert set(get_args(QUANT_TYPES)) == {t.name for t in QuantType}
    assert set(get_args(CALIBRATION_METHODS)) == {m.name for m in CalibrationMethod}
    assert set(get_args(GRAPHS)) == set(OUTPUTS)


BAD = [
    (
        {"teacher": {"training": {"steps": -1}}},
        "parameter teacher.training.steps=-1: should be greater than 0",
    ),
    (
        {"quantization": {"precisions": ["w4a4"]}},
        "parameter quantization.precisions=['w4a4']: should be a mapping of precision names to "
        "{weights, activations}, e.g. w8a8: {weights: QInt8, activations: QUInt8}",
    ),
    (
        {"quantization": {"precisions": {"w8a8": {"weights": "Foo"}}}},
        "parameter quantization.precisions.w8a8.weights='Foo': should be 'QInt8', 'QUInt8', 'QFLOAT8E4M3FN', "
        "'QInt16', 'QUInt16', 'QInt4' or 'QUInt4'",
    ),
    (
        {"curation": {"clips": {"frames_per_clip": 0}}},
        "parameter curation.clips.frames_per_clip=0: should be greater than or equal to 2",
    ),
    (
        {"teacher": {"training": {"stpes": 10}}},
        "parameter teacher.training.stpes=10: not a known key (a typo?)",
    ),
    (
        {"autoencoder": {"training": {"learning_rate": "1e-3"}}},  # YAML 1.1 reads 1e-3 as a string
        "parameter autoencoder.training.learning_rate='1e-3': should be a valid number",
    ),
    (
        {"teacher": {"training": {"batch_size": 6, "gradient_accumulation_steps": 4}}},
        "parameter teacher.training: batch_size=6 should split evenly over num_processes=1 x "
        "gradient_accumulation_steps=4",
    ),
    (
        {"distillation": {"student_steps": 3}},
        "parameter distillation.student_steps=3: should divide teacher.sampling.steps=20, so the teacher "
        "passes every student time",
    ),
    (
        {"profiling": {"deployed": {"precision": "w4a4"}}},
        "parameter profiling.deployed.precision: precision 'w4a4' should be fp32 or one of "
        "quantization.precisions (w8a16, w8a8)",
    ),
    (
        {"distillation": {"trajectories": {"motion_range": [16.0, 0.5]}}},
        "parameter distillation.trajectories.motion_range=[16.0, 0.5]: should be [low, high] with low < high",
    ),
    (
        {"teacher": {"preset": "huge"}},
        "parameter teacher.preset='huge': should be a model preset: paper, tiny",
    ),
    (
        {"curation": {"split": {"val_fraction": 1.0}}},
        "parameter curation.split.val_fraction=1.0: should be less than 1",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_bad_value_is_named_with_what_is_allowed(overrides, message):
    with pytest.raises(ParameterError) as error:
        check_parameters(merge_params(_loader("base")["parameters"], overrides))
    assert error.value.message == message


def test_a_list_for_a_mapping_from_the_command_line_is_named_too():
    loader = _loader("smoke", {"quantization": {"precisions": ["w4a4"]}})
    with pytest.raises(Exception, match="Cannot merge DictConfig with ListConfig"):
        loader["parameters"]  # OmegaConf's own error names no key
    with pytest.raises(
        ParameterError, match=r"^parameter quantization.precisions=\['w4a4'\]: should be a mapping"
    ):
        check_parameters(run_parameters(loader))


def test_merge_params_merges_mappings_and_replaces_the_rest():
    params = {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}
    assert merge_params(params, {"a": {"c": {"d": 3}}, "e": {"f": 1}}) == {
        "a": {"b": 1, "c": {"d": 3}},
        "e": {"f": 1},
    }
    assert params == {"a": {"b": 1, "c": {"d": 2}}, "e": [1]}


@pytest.mark.parametrize("value", BAD[:4], ids=["steps", "precisions", "quant_type", "frames_per_clip"])
def test_kedro_run_with_a_bad_value_stops_before_any_node_with_one_line(project: Path, value):
    overrides, message = value
    key, setting = next(iter(_flatten(overrides).items()))
    started = time.perf_counter()
    result = kedro_cli(project, "run", "--params", f"{key}={setting}")
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"Error: {message}\n" in output
    assert "Traceback" not in output and "Running node" not in output
    assert seconds < 60  # Kedro's start-up; the check itself takes well under a second


def _flatten(overrides: dict, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"}, lists as `kedro run --params` writes them."""
    flat = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = (
                f"[{','.join(map(str, value))}]" if isinstance(value, list) else str(value)
            )
    return flat


def test_the_training_schema_states_the_training_configs_fields_and_defaults():
    """The schema restates TrainingConfig (training/loop.py imports torch and accelerate, too heavy for the
    check that runs before every run): the two must not drift apart."""
    import dataclasses

    from mobilei2v_pipeline.parameter_schemas import Training
    from mobilei2v_pipeline.training.loop import TrainingConfig

    config = {f.name: f.default for f in dataclasses.fields(TrainingConfig)}
    schema = {name: field.default for name, field in Training.model_fields.items()}
    assert set(schema) == set(config)
    for name, default in config.items():
        if default is not dataclasses.MISSING:
            assert schema[name] == default, name


def test_the_documented_training_defaults_are_the_training_configs():
    """conf/'s training blocks state only what differs from the defaults: docs/parameters.md lists them."""
    import dataclasses

    from mobilei2v_pipeline.training.loop import TrainingConfig

    text = (REPO / "docs/parameters.md").read_text().split("## Training", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `(\w+)` \| `?([^`|]+?)`? \|", text, flags=re.M))
    config = {
        f.name: "required" if f.default is dataclasses.MISSING else str(f.default)
        for f in dataclasses.fields(TrainingConfig)
    }
    assert documented == config
