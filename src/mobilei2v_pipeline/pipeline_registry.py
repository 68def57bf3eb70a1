"""Project pipelines: each stage by name, and __default__ runs them all in order."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The order of the flow in docs/design.md; a stage appears here once its pipeline exists.
STAGES = [
    "data_curation",
    "autoencoder",
    "teacher",
    "distillation",
    "evaluation",
    "quantization",
    "export",
    "profiling",
    "release",
]


def register_pipelines() -> dict[str, Pipeline]:
    # Kedro may ask for only the pipelines a run names; __default__ needs them all.
    pipelines = find_pipelines(raise_errors=True)
    unknown = set(pipelines) - set(STAGES) - {"__default__"}
    if unknown:
        raise RuntimeError(f"pipelines {sorted(unknown)} are not in STAGES; add them in flow order")
    if set(STAGES) <= set(pipelines):
        pipelines["__default__"] = sum((pipelines[name] for name in STAGES), Pipeline([]))
    return pipelines
