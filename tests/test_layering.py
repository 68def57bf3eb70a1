"""Stages meet only through the catalog: no pipeline imports another, and the layers below the pipelines
(models, training, video) import none. What two stages share lives below them, once."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mobilei2v_pipeline"
BELOW_THE_PIPELINES = ("models", "training", "video", "datasets")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _pipeline_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["mobilei2v_pipeline", "pipelines"] and len(parts) > 2:
        return parts[2]
    return None


def test_no_pipeline_imports_another():
    crossings = []
    for stage in (PACKAGE / "pipelines").iterdir():
        for path in stage.glob("*.py") if stage.is_dir() else []:
            others = {_pipeline_of(m) for m in _imports(path)} - {None, stage.name}
            crossings += [
                f"{path.relative_to(PACKAGE)} imports pipelines.{other}" for other in sorted(others)
            ]
    assert crossings == []


def test_the_layers_below_the_pipelines_import_no_pipeline():
    upward = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for layer in BELOW_THE_PIPELINES
        for path in (PACKAGE / layer).rglob("*.py")
        for module in sorted(_imports(path))
        if _pipeline_of(module)
    ]
    assert upward == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path):
    module = tmp_path / "nodes.py"
    module.write_text("def f():\n    from mobilei2v_pipeline.pipelines.teacher.task import x\n")
    assert {_pipeline_of(m) for m in _imports(module)} >= {"teacher"}
