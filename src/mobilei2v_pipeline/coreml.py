"""The Core ML target: a graph converted to an ML Program (what runs on iPhone CPUs, GPUs and the Neural
Engine), saved as an .mlpackage, and read back from its spec the way an app developer needs it.

Core ML compiles and runs models only on Apple systems, so nothing here loads or runs one: conversion, the
package, its summary and its validation all work from the spec and the weights file, which is what Linux has.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import coremltools as ct
import numpy as np
import torch
from coremltools.converters.mil.frontend.milproto import load as milproto
from coremltools.proto import FeatureTypes_pb2, MIL_pb2, Model_pb2

TARGET = ct.target.iOS17
PACKAGE = ".mlpackage"
_ARRAY_TYPES = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType


class InvalidCoreMLModel(ValueError):
    """A saved package that coremltools' own checks reject."""


def convert(graph: torch.nn.Module, inputs: dict[str, np.ndarray], output_name: str) -> ct.models.MLModel:
    """`graph` (eval mode) at the inputs' static shapes as an fp16 ML Program for iOS 17, its inputs named as
    `inputs` (in forward()'s order) and its one output `output_name`; float32 in and out, so an app passes
    the same arrays as to the other runtimes, and Core ML casts at the edges.

    Through torch.export, not torch.jit.trace: coremltools' TorchScript frontend fails on the denoiser and
    the light decoder (coremltools 9.0 with NumPy 2: `aten::Int` of a traced shape, a 1-element array, is
    no scalar), while its ExportedProgram frontend converts every graph, takes the user's TensorTypes
    positionally (names, shapes and dtypes, checked against the export's static shapes) and names the
    output as asked; it is also the graph ExecuTorch lowers. coremltools converts only the ATEN dialect,
    so the export is decomposed first (with an empty table: the ops stay as they are)."""
    args = tuple(torch.as_tensor(v) for v in inputs.values())
    with torch.no_grad():
        exported = torch.export.export(graph, args).run_decompositions({})
    model = ct.convert(
        exported,
        inputs=[ct.TensorType(name=name, shape=v.shape, dtype=np.float32) for name, v in inputs.items()],
        outputs=[ct.TensorType(name=output_name, dtype=np.float32)],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16,
        minimum_deployment_target=TARGET,
        skip_model_load=True,  # Core ML cannot load a model off Apple systems
    )
    return _with_output_name(model, output_name)


def _with_output_name(model: ct.models.MLModel, name: str) -> ct.models.MLModel:
    """The model with its one output called `name` (the converter names it so; this makes sure)."""
    spec = model.get_spec()
    (current,) = (output.name for output in spec.description.output)
    if current == name:
        return model
    ct.utils.rename_feature(spec, current, name)  # renames in the description and the program
    return ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True)


def save(model: ct.models.MLModel, folder: Path, name: str) -> Path:
    """`<folder>/<name>.mlpackage`, written beside it first and renamed into place, so that no reader ever
    sees a half-written package. An older one is replaced: renamed away, then the new one in (a folder
    cannot be renamed over a non-empty one), so between the two renames there is briefly none."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}{PACKAGE}"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
    try:
        staged = staging / target.name
        model.save(str(staged))
        _settle(staged)
        if target.exists():
            target.rename(staging / "old")
        staged.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _settle(package: Path) -> None:
    """Make a saved package the same bytes for the same model: coremltools names the manifest's items by
    random UUIDs (name them by a UUID of their path instead), its torch.export frontend leaves a debug
    file in the package that no manifest entry names (drop it), and its spec's map order varies."""
    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {
        key: str(uuid.uuid5(uuid.NAMESPACE_URL, entry["path"]))
        for key, entry in manifest["itemInfoEntries"].items()
    }
    manifest["itemInfoEntries"] = {renamed[k]: v for k, v in manifest["itemInfoEntries"].items()}
    manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")
    for stray in package.glob("*.json"):
        if stray != manifest_path:
            stray.unlink()
    # The spec's metadata is a protobuf map, written in Python's (salted) hash order: write it sorted.
    for spec_path in package.glob("Data/com.apple.CoreML/*.mlmodel"):
        spec = Model_pb2.Model.FromString(spec_path.read_bytes())
        spec_path.write_bytes(spec.SerializeToString(deterministic=True))


def _spec(path_or_model: Path | str | ct.models.MLModel) -> tuple[Model_pb2.Model, Path]:
    if isinstance(path_or_model, ct.models.MLModel):
        return path_or_model.get_spec(), Path(path_or_model.package_path)
    return ct.utils.load_spec(str(path_or_model)), Path(path_or_model)


def _features(features: Any) -> dict[str, dict[str, Any]]:
    return {
        f.name: {
            "shape": list(f.type.multiArrayType.shape),
            "dtype": _ARRAY_TYPES.Name(f.type.multiArrayType.dataType).lower(),
        }
        for f in features
    }


def _precision(spec: Model_pb2.Model) -> dict[str, Any]:
    """Ops and weights of the main function by the dtype they produce, and what that makes the precision:
    fp16 if every computing op (not a constant, not a cast) yields fp16 or integers. Weights are the
    constant tensors; scalar constants are op attributes (an epsilon, a scale factor) whose dtype the op
    fixes, fp32 whatever the precision."""
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    ops: Counter[str] = Counter()
    weights: Counter[str] = Counter()
    casts = 0
    for op in block.operations:
        tensor = op.outputs[0].type.tensorType
        dtype = MIL_pb2.DataType.Name(tensor.dataType).lower()
        if op.type == "const":
            if tensor.rank > 0:
                weights[dtype] += 1
        elif op.type == "cast":
            casts += 1
        else:
            ops[dtype] += 1
    floats = {dtype for dtype in ops if dtype.startswith(("float", "bfloat"))}
    precision = "float16" if floats <= {"float16"} else "mixed" if "float16" in floats else "float32"
    return {
        "compute_precision": precision,
        "ops_fp16": ops["float16"],
        "ops_fp32": ops["float32"],
        "cast_ops": casts,
        "weights_fp16": weights["float16"],
        "weights_fp32": weights["float32"],
    }


def spec_summary(path_or_model: Path | str | ct.models.MLModel) -> dict[str, Any]:
    """What an app developer needs to call the model, read from the spec without loading it: inputs and
    outputs (name -> shape and dtype), the specification version and the oldest iOS that runs it, the
    precision the program computes in, and the package's size in MB (2**20 bytes)."""
    spec, package = _spec(path_or_model)
    version = spec.specificationVersion
    size = sum(f.stat().st_size for f in package.rglob("*") if f.is_file())
    return {
        "inputs": _features(spec.description.input),
        "outputs": _features(spec.description.output),
        "specification_version": version,
        "minimum_ios": ct.target(version).name,  # the canonical member of iOS / macOS / watchOS aliases
        "model_type": spec.WhichOneof("Type"),
        **_precision(spec),
        "size_mb": size / 2**20,
    }


def validate(path: Path | str) -> None:
    """Raise `InvalidCoreMLModel` unless coremltools takes the package at `path` back: its manifest and spec
    parse (`MLModel(..., skip_model_load=True)`), it is an ML Program, the program rebuilds from the spec and
    the weights file (coremltools' milproto loader, which re-infers every op's types at the spec's opset and
    reads every weight), it passes MIL's validation with every tensor of rank 5 or less, and its inputs and
    outputs are the ones the model description names. Off Apple systems this is the most checking there is:
    Core ML's compiler (`ct.models.utils.compile_model`) runs only on macOS."""
    step = "reading the manifest and spec"
    try:
        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
        if spec.WhichOneof("Type") != "mlProgram":
            raise ValueError(f"a {spec.WhichOneof('Type')} model, not an ML Program")
        step = "rebuilding the program from its spec and weights"
        program = milproto.load(spec, spec.specificationVersion, model.weights_dir)
        step = "validating the program"
        program.validate()
        program._check_early_error_out_for_invalid_program()  # ranks <= 5, const inputs, core ops only
        main = program.functions["main"]
        declared = ([f.name for f in spec.description.input], [f.name for f in spec.description.output])
        built = (list(main.inputs), [v.name for v in main.outputs])
        if built != declared:
            raise ValueError(f"its inputs and outputs {built} are not the described {declared}")
    except Exception as error:
        raise InvalidCoreMLModel(f"{path} is no valid Core ML package: {step} failed: {error}") from error
