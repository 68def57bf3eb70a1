"""Run a notebook top to bottom as Jupyter would (nbclient, kernel python3), and read what its cells showed.

Importing this module skips the importing test module when nbclient or nbformat is not installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes, should a rich logging config pretty-print outputs


def execute_notebook(path: Path, timeout: int = 300) -> nbformat.NotebookNode:
    """The notebook at `path` after running every cell in its folder; the kernel inherits the environment.
    Raises nbclient's CellExecutionError on the first failing cell. The file itself is left unchanged."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    """Every output of the code cells, in order."""
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def stdout(nb: nbformat.NotebookNode) -> str:
    """What the cells printed to stdout, joined."""
    return "".join(o.text for o in outputs(nb) if o.output_type == "stream" and o.name == "stdout")


def plain_texts(nb: nbformat.NotebookNode) -> list[str]:
    """The text/plain form of each displayed value (a cell's last expression, display()), without colours."""
    return [ANSI.sub("", o.data["text/plain"]) for o in outputs(nb) if "text/plain" in o.get("data", {})]


def images(nb: nbformat.NotebookNode) -> list[dict]:
    """The outputs holding a PNG image (inline matplotlib figures)."""
    return [o for o in outputs(nb) if "image/png" in o.get("data", {})]


def errors(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for o in outputs(nb) if o.output_type == "error"]
