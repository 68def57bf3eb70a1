"""Quantization of the smoke run: calibrated on the student's own denoiser inputs, QDQ graphs that are
smaller than fp32 and close to it, and ops kept in float as configured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import yaml
from conftest import load_arrays

from mobilei2v_pipeline.pipelines.quantization.nodes import module_nodes, quantize_models

PRECISIONS = ("w8a8", "w8a16")


def _config(project: Path, name: str) -> dict:
    base = yaml.safe_load((project / f"conf/base/parameters_{name}.yml").read_text())[name]
    smoke = project / f"conf/smoke/parameters_{name}.yml"
    for key, value in (yaml.safe_load(smoke.read_text())[name] if smoke.exists() else {}).items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return base


def test_calibration_inputs_are_the_students_own_calls(trained_project: Path):
    settings = _config(trained_project, "quantization")["calibration"]
    inputs = load_arrays(trained_project / "data/05_model_input/denoiser_inputs.npz")
    examples = len(settings["motion_scores"]) * len(settings["seeds"]) * settings["val_clips"]
    calls = examples * sum(settings["steps"])  # one denoiser call per step
    assert {k: len(v) for k, v in inputs.items()} == dict.fromkeys(inputs, calls)
    # A step from pure noise, and later steps from states between noise and data; frame 0 is clean.
    noisy = inputs["timesteps"][:, 1:]
    assert noisy.max() == pytest.approx(1.0) and noisy.min() < 1.0
    assert (inputs["timesteps"][:, 0] == 0).all()
    assert 0 < inputs["held_out"].sum() < calls


def test_quantized_graphs_are_qdq_smaller_and_close_to_fp32(trained_project: Path):
    settings = _config(trained_project, "quantization")
    figures = json.loads((trained_project / "data/08_reporting/quantization.json").read_text())
    measured = json.loads((trained_project / "data/08_reporting/measured/quantization.json").read_text())
    fp32 = onnx.load(trained_project / "data/06_models/onnx/fp32/denoiser.onnx")
    embedding_nodes = module_nodes(fp32, settings["keep_float_modules"])
    for precision in PRECISIONS:
        model = onnx.load(trained_project / "data/06_models/onnx_quantized" / precision / "denoiser.onnx")
        ops = {n.op_type for n in model.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        # Ops and modules kept in float read their inputs unquantized: no DequantizeLinear feeds them.
        producer = {o: n.op_type for n in model.graph.node for o in n.output}
        kept = [
            n
            for n in model.graph.node
            if n.op_type in settings["keep_float_ops"] or n.name in embedding_nodes
        ]
        assert {n.name for n in kept} & embedding_nodes
        assert not [n.name for n in kept if "DequantizeLinear" in {producer.get(i) for i in n.input}]
        assert figures[f"{precision}_size_mb"] < figures["fp32_size_mb"]
        assert figures[f"{precision}_psnr_db"] > 20
        assert figures[f"{precision}_video_psnr_db"] > 20
        assert measured[f"{precision}_latency_ms"] > 0 and f"{precision}_latency_ms" not in figures
    assert figures["w8a16_psnr_db"] > figures["w8a8_psnr_db"]  # 16-bit activations lose less


def test_only_graphs_with_calibration_inputs_can_be_quantized():
    with pytest.raises(ValueError, match="only the denoiser"):
        quantize_models({}, {"held_out": np.array([False])}, {"graphs": ["decoder"], "precisions": {}})


def test_the_8_bit_executorch_program_is_delegated_smaller_and_close_to_fp32(trained_project: Path):
    from mobilei2v_pipeline import executorch_runtime

    program = (trained_project / "data/06_models/executorch_quantized/denoiser_w8a8.pte").read_bytes()
    fp32 = (trained_project / "data/06_models/executorch/denoiser.pte").read_bytes()
    inputs = load_arrays(trained_project / "data/05_model_input/denoiser_inputs.npz")
    sample = {name: inputs[name][:1] for name in ("latents", "timesteps", "motion")}
    output = executorch_runtime.run(executorch_runtime.load(program), sample)  # ExecuTorch's own runtime
    reference = executorch_runtime.run(executorch_runtime.load(fp32), sample)
    assert output.shape == reference.shape and np.isfinite(output).all()
    figures = json.loads((trained_project / "data/08_reporting/quantization.json").read_text())
    measured = json.loads((trained_project / "data/08_reporting/measured/quantization.json").read_text())
    assert figures["executorch_w8a8_denoiser_size_mb"] == pytest.approx(len(program) / 2**20, rel=1e-5)
    # Every weight but the condition embeddings' went from 4 bytes to 1: the token path (static) and the
    # modulation projections (activations quantized at run time).
    student = torch.load(trained_project / "data/06_models/distillation/student2.pt", weights_only=False)
    quantized = sum(
        w.numel() for name, w in student["state_dict"].items() if w.ndim > 1 and "embedder.mlp." not in name
    )
    # At least half the 3 bytes a weight saves: per-channel scales and zero points (12 bytes an output
    # channel) cost much of the rest at the smoke run's width of 36, little at the paper's 1152.
    assert len(fp32) - len(program) > 0.5 * 3 * quantized

    def stored_in_float(name: str) -> bool:
        return student["state_dict"][name].numpy().astype(np.float32).tobytes()[:64] in program

    assert stored_in_float("timestep_embedder.mlp.0.weight")
    assert stored_in_float("motion_embedder.mlp.2.weight")
    assert not stored_in_float("timestep_embedder.modulation.1.weight")
    assert figures["executorch_w8a8_denoiser_psnr_db"] > 30
    assert figures["executorch_w8a8_video_psnr_db"] > 20
    assert figures["executorch_w8a8_denoiser_delegated_mac_fraction"] >= 0.98
    table = pd.read_csv(trained_project / "data/08_reporting/executorch_quantization_table.csv")
    assert "slice" not in str(table.set_index("precision").loc["w8a8", "non_delegated_ops"])
    assert measured["executorch_w8a8_denoiser_median_ms"] > 0
    assert measured["executorch_w8a8_denoiser_speedup"] > 0
    assert "executorch_w8a8_denoiser_median_ms" not in figures
