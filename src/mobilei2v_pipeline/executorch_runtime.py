"""The ExecuTorch target: a graph lowered to an ExecuTorch program with the XNNPACK delegate (what runs on
Android and iOS CPUs), in fp32 or 8-bit, how much of its work the delegate took, and ExecuTorch's own runtime
to run it here."""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from executorch.exir import EdgeProgramManager, to_edge_transform_and_lower
from executorch.exir.passes.constant_prop_pass import constant_prop_pass
from executorch.runtime import Method, Runtime
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
from torchao.quantization.pt2e.quantizer.composable_quantizer import ComposableQuantizer

from mobilei2v_pipeline.timing import call_times_ms

DELEGATE_CALL = "executorch_call_delegate"


def _tensors(inputs: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(v) for v in inputs.values())


def _exported(graph: torch.nn.Module, inputs: dict[str, np.ndarray]) -> torch.export.ExportedProgram:
    """`graph` at the inputs' static shapes with its constants folded: a weight the export form reshapes (a
    Linear's as a 1x1 convolution's) must be a constant for XNNPACK and its quantizer to take the op."""
    exported = constant_prop_pass(torch.export.export(graph, _tensors(inputs)))
    for name, constant in exported.constants.items():  # folded from parameters, so they still ask for grad
        exported.constants[name] = constant.detach()
    return exported


def lower(graph: torch.nn.Module, inputs: dict[str, np.ndarray]) -> EdgeProgramManager:
    """`graph` at the inputs' static shapes, lowered with the XNNPACK partitioner."""
    return to_edge_transform_and_lower(_exported(graph, inputs), partitioner=[XnnpackPartitioner()])


def lower_8bit(
    graph: torch.nn.Module,
    calibration: Iterable[dict[str, np.ndarray]],
    quantized_from: Sequence[str],
    dynamic_modules: Sequence[str] = (),
) -> EdgeProgramManager:
    """`graph` quantized through PT2E with XNNPACK's quantizer and lowered: int8 weights, symmetric per
    output channel, and static int8 activations whose ranges are observed on every input set of
    `calibration` (the first fixes the shapes), for the ops that depend on the inputs named in
    `quantized_from`. Of the rest, the linears inside `dynamic_modules` (module paths) get int8 weights and
    activations quantized at run time (per input, nothing calibrated); everything else stays float. For the
    denoiser: ("latents",) and the modulation projections, so the condition path's embeddings stay float
    (at static 8 bits they cost 2 dB of the output's PSNR) and its largest weights are 8-bit. XNNPACK's
    quantizer takes convolutions, linears, adds, muls and concatenations; the rest (the attention's batched
    products, the norms' statistics) runs in fp32 inside the same delegate."""
    calibration = iter(calibration)
    first = next(calibration)
    module = _exported(graph, first).module()
    static = _downstream(module.graph, set(quantized_from))

    def dynamic(node: torch.fx.Node) -> bool:
        paths = (path for path, _ in node.meta.get("nn_module_stack", {}).values())
        return node not in static and any(f".{m}." in f".{p}." for p in paths for m in dynamic_modules)

    # A filter sees every node of a pattern, weights too: those are not computed from any input.
    quantizers = [
        XNNPACKQuantizer()
        .set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=is_dynamic))
        .set_filter_function(lambda node, chosen=chosen: node.op != "call_function" or chosen(node))
        for is_dynamic, chosen in ((False, static.__contains__), (True, dynamic))
    ]
    prepared = prepare_pt2e(module, ComposableQuantizer(quantizers))
    for inputs in chain([first], calibration):  # streamed: one input set in memory at a time
        prepared(*_tensors(inputs))
    program = torch.export.export(convert_pt2e(prepared), _tensors(first))
    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])


def _downstream(graph: torch.fx.Graph, inputs: set[str]) -> set[torch.fx.Node]:
    """The nodes whose values depend on the placeholders named `inputs` (nodes are in topological order)."""
    found: set[torch.fx.Node] = set()
    for node in graph.nodes:
        named = node.op == "placeholder" and node.name in inputs
        if named or any(i in found for i in node.all_input_nodes):
            found.add(node)
    return found


def to_executorch(lowered: EdgeProgramManager) -> bytes:
    """The .pte program."""
    return lowered.to_executorch().buffer


def _macs(node: torch.fx.Node) -> int:
    """Multiply-accumulates of a convolution or matrix product node (0 for any other op)."""
    name = getattr(node.target, "__name__", str(node.target))
    out = node.meta.get("val")
    if out is None or not any(op in name for op in ("convolution", "mm.", "linear")):
        return 0
    if "convolution" in name:
        return out.numel() * math.prod(node.args[1].meta["val"].shape[1:])
    operand = node.args[1] if "addmm" in name else node.args[0]  # addmm(bias, a, b)
    return out.numel() * operand.meta["val"].shape[-1]


def delegation(lowered: EdgeProgramManager) -> dict[str, float | str]:
    """The share of the program's multiply-accumulates inside XNNPACK delegates, and the ops left to
    ExecuTorch's portable kernels, by type ("op x count, ...")."""
    program = lowered.exported_program()
    delegated = outside = 0
    left: Counter[str] = Counter()
    for node in program.graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if name == DELEGATE_CALL:
            backend = getattr(program.graph_module, node.args[0].target)
            delegated += sum(_macs(n) for n in backend.original_module.graph.nodes if n.op == "call_function")
        else:
            outside += _macs(node)
            left[name.removeprefix("aten.").removesuffix(".default")] += 1
    total = delegated + outside
    return {
        "delegated_mac_fraction": delegated / total if total else 1.0,
        "non_delegated_ops": ", ".join(f"{op} x{count}" for op, count in left.most_common()),
    }


def load(program: bytes) -> Method:
    """The program's forward method, holding the loaded program: ExecuTorch's `Method` does not, and a
    method whose program has been freed crashes the process."""
    loaded = Runtime.get().load_program(program)
    method = loaded.load_method("forward")
    method.program = loaded
    return method


def run(method: Method, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The first output for one set of inputs, in the order of the graph's forward()."""
    return method.execute(list(_tensors(inputs)))[0].numpy()


def median_ms(method: Method, inputs: dict[str, np.ndarray], repeats: int) -> float:
    """Median milliseconds of `repeats` runs on the same inputs, after one untimed warm-up run (the first
    run packs XNNPACK's weights)."""
    tensors = list(_tensors(inputs))
    return float(np.median(call_times_ms(lambda: method.execute(tensors), repeats, warmup=1)))
