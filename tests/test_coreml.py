"""The Core ML target on the project's real graphs at the tiny preset: the mobile denoiser and the light pair
convert to fp16 ML Programs for iOS 17 whose saved packages hold the named, static inputs and output, pass
coremltools' validation, and replace older packages atomically. (Core ML cannot run a model off Apple
systems, so nothing here predicts.)"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mobilei2v_pipeline import coreml
from mobilei2v_pipeline.models.config import PRESETS
from mobilei2v_pipeline.models.denoiser import MobileI2VDenoiser
from mobilei2v_pipeline.models.light_autoencoder import LightAutoencoder, LightAutoencoderConfig
from mobilei2v_pipeline.models.mobile_denoiser import MobileDenoiser
from mobilei2v_pipeline.pipelines.export.graphs import INPUTS, OUTPUTS, _Decoder, _Encoder

PRESET = PRESETS["tiny"]
GRID = PRESET.latent_grid
CHANNELS = PRESET.denoiser.latent_channels
HEIGHT, WIDTH = PRESET.video_height, PRESET.video_width
LATENTS = (1, CHANNELS, GRID.frames, GRID.height, GRID.width)
SHAPES = {
    "denoiser": {"inputs": [LATENTS, (1, GRID.frames), (1,)], "output": LATENTS},
    "light_decoder": {"inputs": [LATENTS], "output": (1, 3, PRESET.video_frames, HEIGHT, WIDTH)},
    "light_encoder": {"inputs": [(1, 3, HEIGHT, WIDTH)], "output": (1, CHANNELS, 1, GRID.height, GRID.width)},
}


def _graphs() -> dict[str, nn.Module]:
    """The tiny graphs with random weights (the denoiser's output layer too: it starts at zero), the denoiser
    cut to two blocks (one of each attention): a conversion's time grows with the blocks, not its checks."""
    torch.manual_seed(0)
    model = MobileI2VDenoiser(dataclasses.replace(PRESET.denoiser, depth=2, softmax_blocks=(1,)))
    nn.init.normal_(model.final_layer.linear.weight, std=0.5)
    config = LightAutoencoderConfig(
        CHANNELS, PRESET.spatial_compression, PRESET.temporal_compression, (64, 32), linear_path=True
    )
    light = LightAutoencoder(config)
    rng = np.random.default_rng(0)
    stats = {"mean": rng.normal(size=CHANNELS).tolist(), "std": rng.uniform(0.5, 2, CHANNELS).tolist()}
    graphs = {
        "denoiser": MobileDenoiser(model, GRID),
        "light_decoder": _Decoder(light, stats, HEIGHT, WIDTH),
        "light_encoder": _Encoder(light, stats),
    }
    return {name: graph.eval() for name, graph in graphs.items()}


def _inputs(name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        key: rng.uniform(0, 1, shape).astype(np.float32)
        for key, shape in zip(INPUTS[name], SHAPES[name]["inputs"], strict=True)
    }


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each graph converted once and saved."""
    folder = tmp_path_factory.mktemp("coreml")
    return {
        name: coreml.save(coreml.convert(graph, _inputs(name), OUTPUTS[name]), folder, name)
        for name, graph in _graphs().items()
    }


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_graph_converts_to_an_fp16_ml_program_with_its_named_static_inputs_and_output(packages, name):
    summary = coreml.spec_summary(packages[name])
    expected_inputs = {
        key: {"shape": list(shape), "dtype": "float32"}
        for key, shape in zip(INPUTS[name], SHAPES[name]["inputs"], strict=True)
    }
    assert summary["inputs"] == expected_inputs
    assert list(summary["inputs"]) == INPUTS[name]  # in forward()'s order
    assert summary["outputs"] == {OUTPUTS[name]: {"shape": list(SHAPES[name]["output"]), "dtype": "float32"}}
    assert summary["model_type"] == "mlProgram"
    assert summary["specification_version"] >= coreml.TARGET.value
    assert summary["minimum_ios"] == "iOS17"
    assert summary["compute_precision"] == "float16"
    assert summary["ops_fp16"] > 0 and summary["ops_fp32"] == 0
    assert summary["weights_fp16"] > 0 and summary["weights_fp32"] == 0
    # float32 at the edges: a cast in per input and one out
    assert summary["cast_ops"] == len(INPUTS[name]) + 1
    assert 0 < summary["size_mb"] < 10
    coreml.validate(packages[name])


def test_the_summary_of_an_unsaved_model_matches_its_saved_package(tmp_path):
    graph, inputs = _graphs()["light_encoder"], _inputs("light_encoder")
    model = coreml.convert(graph, inputs, "latent")
    in_memory = coreml.spec_summary(model)
    saved = coreml.spec_summary(coreml.save(model, tmp_path, "light_encoder"))
    assert {k: v for k, v in in_memory.items() if k != "size_mb"} == {
        k: v for k, v in saved.items() if k != "size_mb"
    }


def test_the_same_graph_saves_to_the_same_bytes_in_another_process(packages, tmp_path):
    """DVC hashes the packages: a rerun of the same model must not change them (coremltools' UUIDs and its
    spec's map order, which follows Python's salted string hashes, made every save differ)."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; import test_coreml as t; "
        "t.coreml.save(t.coreml.convert(t._graphs()['light_encoder'], t._inputs('light_encoder'), "
        "t.OUTPUTS['light_encoder']), Path(sys.argv[2]), 'light_encoder')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    here = str(Path(__file__).parent)
    subprocess.run([sys.executable, "-c", script, here, str(tmp_path)], check=True, env=env)

    def files(package: Path) -> dict[str, bytes]:
        return {p.relative_to(package).as_posix(): p.read_bytes() for p in package.rglob("*") if p.is_file()}

    assert files(tmp_path / "light_encoder.mlpackage") == files(packages["light_encoder"])


def test_a_save_replaces_an_older_package_and_leaves_nothing_beside_it(tmp_path):
    graph, inputs = _graphs()["light_encoder"], _inputs("light_encoder")
    older = coreml.save(coreml.convert(graph, inputs, "old"), tmp_path, "g")
    (older / "stale.txt").write_text("from the older package")
    newer = coreml.save(coreml.convert(graph, inputs, "new"), tmp_path, "g")
    assert newer == older == tmp_path / "g.mlpackage"
    assert list(coreml.spec_summary(newer)["outputs"]) == ["new"]
    assert not (newer / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["g.mlpackage"]  # no staging folder left
    coreml.validate(newer)


def test_an_output_renamed_after_conversion_is_renamed_in_the_program_too(tmp_path):
    model = coreml.convert(_graphs()["light_encoder"], _inputs("light_encoder"), "latent")
    package = coreml.save(coreml._with_output_name(model, "code"), tmp_path, "renamed")
    assert list(coreml.spec_summary(package)["outputs"]) == ["code"]
    coreml.validate(package)  # the rebuilt program's output is the described one


def test_validation_rejects_a_package_whose_weights_are_damaged(tmp_path, packages):
    package = tmp_path / "broken.mlpackage"
    shutil.copytree(packages["light_decoder"], package)
    (weights,) = package.rglob("weight.bin")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(coreml.InvalidCoreMLModel, match=r"broken\.mlpackage.*weights failed"):
        coreml.validate(package)
