"""Start the training function in one or several processes, from inside a running Kedro node."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from accelerate import debug_launcher, notebook_launcher


def launch_processes(function: Callable[..., None], args: tuple[Any, ...], num_processes: int) -> None:
    """Run `function(*args)` here when one process is asked for; else in `num_processes` forked workers
    (one per GPU, or CPU processes talking over gloo), and wait for them. Under `accelerate launch` (several
    machines, see `mobilei2v train`) this process already is one rank: it runs the function itself."""
    if num_processes <= 1 or launched_by_accelerate():
        function(*args)
    elif torch.cuda.is_available():
        notebook_launcher(function, args, num_processes=num_processes)
    else:
        debug_launcher(function, args, num_processes=num_processes)


def launched_by_accelerate() -> bool:
    """True in a process that `accelerate launch` (torchrun) started as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1
