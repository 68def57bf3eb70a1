"""The curation overview notebook runs top to bottom on a smoke run's outputs and shows what it claims to."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, run_kedro

from notebooks import errors, execute_notebook, images, nbformat, outputs, plain_texts, stdout

NOTEBOOK = Path("notebooks") / "curation_overview.ipynb"


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(REPO / NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert not outputs(nb), "clear the notebook's outputs before committing it"


def test_curation_overview_notebook_runs(project: Path, monkeypatch: pytest.MonkeyPatch):
    run_kedro(project, pipeline="data_curation")
    monkeypatch.setenv("KEDRO_ENV", "smoke")  # the kernel inherits the environment

    nb = execute_notebook(project / NOTEBOOK)  # raises CellExecutionError on the first failing cell

    assert not errors(nb)
    assert "env smoke:" in stdout(nb), "the kernel did not read KEDRO_ENV"
    assert len(images(nb)) >= 3, "expected the motion histogram, the reasons chart and the frame strip"

    # The figures table shows the metrics; its clip count is the number of rows of the published clip table.
    clip_table = pd.read_parquet(project / "data" / "03_primary" / "clip_table.parquet")
    texts = plain_texts(nb)
    kept = [m.group(1) for text in texts for m in re.finditer(r"^clips_kept\s+(\S+)\s*$", text, re.MULTILINE)]
    assert kept, "the figures table is missing clips_kept"
    assert float(kept[0]) == len(clip_table) > 0
