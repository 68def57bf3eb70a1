"""The arrays the stages hand each other round-trip through one .npz: names nested, dtypes and shapes kept,
nothing pickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError

from mobilei2v_pipeline.datasets.numpy_arrays import NumpyArraysDataset


def test_nested_arrays_round_trip_with_their_dtypes(tmp_path: Path):
    rng = np.random.default_rng(0)
    samples = {
        "denoiser": {
            "latents": rng.standard_normal((2, 4, 3, 5, 6)).astype(np.float32),
            "motion": np.float32([1.5, 4.0]),
        },
        "encoder": {"image": rng.integers(0, 255, (2, 3, 8, 8), dtype=np.uint8)},
        "held_out": np.array([False, True]),
    }
    dataset = NumpyArraysDataset(str(tmp_path / "samples.npz"))
    dataset.save(samples)
    loaded = dataset.load()
    assert loaded.keys() == samples.keys() and loaded["denoiser"].keys() == samples["denoiser"].keys()
    for got, expected in [
        (loaded["denoiser"]["latents"], samples["denoiser"]["latents"]),
        (loaded["encoder"]["image"], samples["encoder"]["image"]),
        (loaded["held_out"], samples["held_out"]),
    ]:
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["samples.npz"]  # written beside, renamed


def test_a_name_that_would_nest_or_an_object_array_is_refused(tmp_path: Path):
    dataset = NumpyArraysDataset(str(tmp_path / "bad.npz"))
    with pytest.raises(DatasetError, match="holds a '/'"):
        dataset.save({"a/b": np.zeros(2)})
    dataset.save({"objects": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(DatasetError, match="pickle"):
        dataset.load()  # what would need unpickling is never loaded
