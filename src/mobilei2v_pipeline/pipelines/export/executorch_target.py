"""The ExecuTorch target: a graph lowered to an ExecuTorch program with the XNNPACK delegate (what runs on
Android and iOS CPUs), and ExecuTorch's own runtime to run it here."""

from __future__ import annotations

import time

import numpy as np
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge_transform_and_lower
from executorch.runtime import Method, Runtime


def to_executorch(graph: torch.nn.Module, inputs: dict[str, np.ndarray]) -> bytes:
    """The .pte program of `graph` at the inputs' static shapes."""
    exported = torch.export.export(graph, tuple(torch.as_tensor(v) for v in inputs.values()))
    return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def load(program: bytes) -> Method:
    return Runtime.get().load_program(program).load_method("forward")


def run(method: Method, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The first output for one set of inputs, in the order of the graph's forward()."""
    return method.execute([torch.as_tensor(v) for v in inputs.values()])[0].numpy()


def timed_run(method: Method, inputs: dict[str, np.ndarray]) -> float:
    """Milliseconds of one run."""
    tensors = [torch.as_tensor(v) for v in inputs.values()]
    started = time.perf_counter()
    method.execute(tensors)
    return 1000 * (time.perf_counter() - started)
