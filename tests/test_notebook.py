"""The curation overview notebook runs top to bottom on a smoke run's outputs and shows what it claims to."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_kedro

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path("notebooks") / "curation_overview.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes, should a rich logging config pretty-print outputs


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(Path(__file__).resolve().parents[1] / NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert not _outputs(nb), "clear the notebook's outputs before committing it"


def test_curation_overview_notebook_runs(project: Path, monkeypatch: pytest.MonkeyPatch):
    run_kedro(project, pipeline="data_curation")
    monkeypatch.setenv("KEDRO_ENV", "smoke")  # the kernel inherits the environment

    path = project / NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "env smoke:" in stdout, "the kernel did not read KEDRO_ENV"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "expected the motion histogram, the reasons chart and the frame strip"

    # The figures table shows the metrics; its clip count is the number of rows of the published clip table.
    clip_table = pd.read_parquet(project / "data" / "03_primary" / "clip_table.parquet")
    texts = [ANSI.sub("", o.data["text/plain"]) for o in outputs if "text/plain" in o.get("data", {})]
    kept = [m.group(1) for text in texts for m in re.finditer(r"^clips_kept\s+(\S+)\s*$", text, re.MULTILINE)]
    assert kept, "the figures table is missing clips_kept"
    assert float(kept[0]) == len(clip_table) > 0
