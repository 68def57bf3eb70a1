"""The Great Expectations suite that guards the clip table, and a readable summary of its result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # Great Expectations takes 2.6 s to import, and every `kedro run` imports every pipeline
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult

SPLITS = ("train", "val")
_INT = ["int64", "int32"]
_FLOAT = ["float64", "float32", *_INT]
_TEXT = "str"  # checked value by value: GE's dtype lists do not recognise pandas 3's string dtype

# The clip table's columns and the types each may have: the contract later stages read.
CLIP_TABLE_SCHEMA: dict[str, list[str] | str] = {
    "clip_id": _TEXT,
    "video_id": _TEXT,
    "split": _TEXT,
    "start_frame": _INT,
    "start_time_s": _FLOAT,
    "rotation": _INT,
    "effective_fps": _FLOAT,
    "max_gap_ms": _FLOAT,
    "duplicate_group": _TEXT,
    "frames": _INT,
    "frame_interval": _INT,
    "height": _INT,
    "width": _INT,
    "source_fps": _FLOAT,
    "source_width": _INT,
    "source_height": _INT,
    "source_num_frames": _INT,
    "source_duration_s": _FLOAT,
    "source_codec": _TEXT,
    "motion_score": _FLOAT,
    "sharpness": _FLOAT,
    "brightness": _FLOAT,
    "contrast": _FLOAT,
    "scene_cut_score": _FLOAT,
}


def build_suite(rules: dict[str, Any], clips: dict[str, int]) -> gx.ExpectationSuite:
    """Columns present, typed and non-null; unique clip ids; value ranges; both splits with enough clips."""
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name="clip_table")
    suite.add_expectation(
        e.ExpectTableColumnsToMatchSet(column_set=list(CLIP_TABLE_SCHEMA), exact_match=False)
    )
    for column, dtypes in CLIP_TABLE_SCHEMA.items():
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column))
        if dtypes == _TEXT:
            suite.add_expectation(e.ExpectColumnValuesToBeOfType(column=column, type_=_TEXT))
        else:
            suite.add_expectation(e.ExpectColumnValuesToBeInTypeList(column=column, type_list=dtypes))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column="clip_id"))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)))
    suite.add_expectation(e.ExpectColumnDistinctValuesToContainSet(column="split", value_set=list(SPLITS)))
    suite.add_expectation(
        e.ExpectColumnValuesToBeBetween(column="split_clips", min_value=rules["min_clips_per_split"])
    )
    exact = {"frames": clips["frames_per_clip"], "height": clips["height"], "width": clips["width"]}
    for column, value in exact.items():
        suite.add_expectation(
            e.ExpectColumnValuesToBeBetween(column=column, min_value=value, max_value=value)
        )
    for column, (low, high) in rules["ranges"].items():
        suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    return suite


def validate(
    clip_table: pd.DataFrame, rules: dict[str, Any], clips: dict[str, int]
) -> ExpectationSuiteValidationResult:
    """Run the suite on the table, with each row's split size added as `split_clips`."""
    import great_expectations as gx

    frame = clip_table.assign(split_clips=clip_table.groupby("split")["clip_id"].transform("count"))
    context = gx.get_context(mode="ephemeral")  # in memory: nothing is written outside the catalog
    context.variables.progress_bars = {"globally": False}
    suite = build_suite(rules, clips)
    asset = context.data_sources.add_pandas("curation").add_dataframe_asset("clip_table")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(suite)


def summarize(result: ExpectationSuiteValidationResult) -> dict[str, Any]:
    """The result as JSON, with the failed expectations listed first in a form a person reads."""
    full = result.to_json_dict()
    # The load time is the one field that differs between runs on the same table.
    full["meta"].get("batch_markers", {}).pop("ge_load_time", None)
    failed = [
        {
            "expectation": r["expectation_config"]["type"],
            "column": r["expectation_config"]["kwargs"].get("column"),
            "kwargs": {
                k: v for k, v in r["expectation_config"]["kwargs"].items() if k not in ("batch_id", "column")
            },
            "observed": r["result"].get("observed_value", r["result"].get("partial_unexpected_list")),
        }
        for r in full["results"]
        if not r["success"]
    ]
    return {
        "success": bool(full["success"]),
        "statistics": full["statistics"],
        "failed": failed,
        "result": full,
    }


def render_html(result: ExpectationSuiteValidationResult) -> str:
    """GE's data-docs page for the result (its styles load from a CDN; the content reads offline)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))


def describe_failures(summary: dict[str, Any]) -> str:
    return "; ".join(
        f"{f['expectation']}({f['column'] or ''}) {f['kwargs']} observed {f['observed']}"
        for f in summary["failed"]
    )
