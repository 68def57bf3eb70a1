"""The export of the smoke run: static, named ONNX graphs that compute what the torch models compute."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from conftest import load_arrays

from mobilei2v_pipeline import executorch_runtime, onnx_runtime
from mobilei2v_pipeline.pipelines.export.graphs import INPUTS, OUTPUTS

GRAPHS = ["decoder", "denoiser", "encoder", "light_decoder", "light_encoder"]


def test_every_graph_is_static_named_opset_18_and_passes_the_checker(trained_project: Path):
    for name in GRAPHS:
        model = onnx.load(trained_project / "data/06_models/onnx/fp32" / f"{name}.onnx")
        onnx.checker.check_model(model, full_check=True)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
        assert [i.name for i in model.graph.input] == INPUTS[name]
        assert [o.name for o in model.graph.output] == [OUTPUTS[name]]
        for value in [*model.graph.input, *model.graph.output]:
            dims = value.type.tensor_type.shape.dim
            assert all(d.dim_value > 0 and not d.dim_param for d in dims), (name, value.name)
        # No checkout paths (the exporter's stack traces): the same graph from two clones is the same bytes.
        assert str(Path(__file__).parents[3]).encode() not in model.SerializeToString(), name
        assert str(trained_project).encode() not in model.SerializeToString(), name


def test_onnx_runtime_matches_torch_and_the_report_says_so(trained_project: Path):
    samples = load_arrays(trained_project / "data/05_model_input/export_samples.npz")
    reference = load_arrays(trained_project / "data/07_model_output/torch_outputs.npz")
    model = onnx.load(trained_project / "data/06_models/onnx/fp32/denoiser.onnx")
    session = onnx_runtime.session(model)
    first = onnx_runtime.run(session, {k: v[:1] for k, v in samples["denoiser"].items()})
    assert np.abs(first - reference["denoiser"][:1]).max() < 1e-4
    assert np.abs(reference["denoiser"]).max() > 0.01  # a trained student: parity means something

    figures = json.loads((trained_project / "data/08_reporting/export.json").read_text())
    for name in GRAPHS:
        assert figures[f"{name}_parity_max_abs_err"] < 1e-4
        assert figures[f"{name}_psnr_db"] > 80
        assert figures[f"{name}_fp32_size_mb"] > 0
    assert figures["mobile_attention_max_abs_err"] <= 1e-4
    assert {"mobile_attention_tiny_max_abs_err", "mobile_attention_paper_max_abs_err"} <= set(figures)


def test_the_mobile_denoiser_graph_has_no_fused_attention_and_few_transposes(trained_project: Path):
    table = pd.read_csv(trained_project / "data/08_reporting/export_table.csv").set_index("graph")
    assert table.loc["denoiser", "attention_ops"] == 0
    # The smoke denoiser: one linear and one softmax block. The condition embeddings are permuted twice
    # (the blocks' modulation, the output layer's); the attention products transpose K in a linear block and
    # Q, V and the output in a softmax block; nothing else moves.
    assert table.loc["denoiser", "transposes"] <= 2 + 1 + 3
    graph = onnx.load(trained_project / "data/06_models/onnx/fp32/denoiser.onnx").graph
    ops = {node.op_type for node in graph.node}
    assert not ops & {"Einsum", "Split"}  # what mobile delegates take least well


def test_the_executorch_program_runs_in_executorch_and_matches_torch(trained_project: Path):
    program = (trained_project / "data/06_models/executorch/denoiser.pte").read_bytes()
    samples = load_arrays(trained_project / "data/05_model_input/export_samples.npz")["denoiser"]
    reference = load_arrays(trained_project / "data/07_model_output/torch_outputs.npz")["denoiser"]
    output = executorch_runtime.run(
        executorch_runtime.load(program), {n: samples[n][:1] for n in INPUTS["denoiser"]}
    )
    assert np.abs(output - reference[:1]).max() < 1e-4
    figures = json.loads((trained_project / "data/08_reporting/export.json").read_text())
    assert figures["executorch_denoiser_parity_max_abs_err"] < 1e-4
    assert figures["executorch_denoiser_size_mb"] > 0
    # Delegated end to end: every convolution and matrix product runs in XNNPACK.
    assert figures["executorch_denoiser_delegated_mac_fraction"] >= 0.98
    table = pd.read_csv(trained_project / "data/08_reporting/executorch_table.csv").set_index("graph")
    assert "convolution" not in str(table.loc["denoiser", "non_delegated_ops"])


def test_export_and_executorch_times_are_measured_apart(trained_project: Path):
    measured = trained_project / "data/08_reporting/measured"
    timings = pd.read_csv(measured / "export_timings.csv").set_index("graph")
    assert sorted(timings.index) == GRAPHS and (timings["onnx_export_s"] > 0).all()
    figures = json.loads((measured / "export.json").read_text())
    median = timings.loc["denoiser", "executorch_median_ms"]  # the CSV keeps 6 significant digits
    assert figures["executorch_denoiser_median_ms"] == pytest.approx(median, rel=1e-5) and median > 0
    assert figures["executorch_denoiser_lowering_s"] > 0
    # Nothing a clock sets is in the versioned figures.
    versioned = json.loads((trained_project / "data/08_reporting/export.json").read_text())
    assert not {k for k in versioned if k.endswith(("_ms", "_s"))}


def test_the_core_ml_packages_are_valid_fp16_ml_programs_with_the_app_s_names(trained_project: Path):
    from mobilei2v_pipeline import coreml

    folder = trained_project / "data/06_models/coreml"  # the light pair in smoke (the denoiser: test_coreml)
    assert sorted(p.name for p in folder.iterdir()) == ["light_decoder.mlpackage", "light_encoder.mlpackage"]
    samples = load_arrays(trained_project / "data/05_model_input/export_samples.npz")
    for package in folder.iterdir():
        graph = package.name.removesuffix(".mlpackage")
        coreml.validate(package)  # coremltools' own checks; Core ML itself runs only on Apple systems
        summary = coreml.spec_summary(package)
        shapes = {n: f["shape"] for n, f in summary["inputs"].items()}
        assert shapes == {n: [1, *samples[graph][n].shape[1:]] for n in INPUTS[graph]}  # named, batch 1
        assert list(summary["outputs"]) == [OUTPUTS[graph]]
        assert summary["minimum_ios"] == "iOS17" and summary["compute_precision"] == "float16"
    table = pd.read_csv(trained_project / "data/08_reporting/coreml_table.csv").set_index("graph")
    figures = json.loads((trained_project / "data/08_reporting/export.json").read_text())
    size = table.loc["light_decoder", "size_mb"]
    assert figures["coreml_light_decoder_size_mb"] == pytest.approx(size, rel=1e-5)
