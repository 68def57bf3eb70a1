"""Start the training function in one or several processes, from inside a running Kedro node."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
from accelerate.utils import patch_environment
from torch.multiprocessing import start_processes


def launch_processes(function: Callable[..., None], args: tuple[Any, ...], num_processes: int) -> None:
    """Run `function(*args)` here when one process is asked for; else in `num_processes` spawned workers (one
    per GPU, or CPU processes talking over gloo) that join one torch.distributed group, and wait for them.

    The workers are spawned, not forked: a fork copies this process's CUDA context (which CUDA cannot use)
    and its OpenMP thread pool state, so `function` and `args` travel by pickle (CPU tensors through shared
    memory). Under `accelerate launch` or torchrun (several machines, see `mobilei2v train`) this process
    already is one rank: it runs the function itself."""
    if num_processes <= 1 or launched_by_accelerate():
        function(*args)
        return
    cuda = torch.cuda.is_available()
    if cuda and torch.cuda.device_count() < num_processes:
        raise ValueError(
            f"num_processes={num_processes} needs as many GPUs; this machine has {torch.cuda.device_count()}"
        )
    environment = {"world_size": num_processes, "master_addr": "127.0.0.1", "master_port": _free_port()}
    if not cuda:
        environment |= {"accelerate_use_cpu": "yes", "gloo_socket_ifname": "lo"}
    with patch_environment(**environment):
        start_processes(_rank, args=(function, args), nprocs=num_processes, start_method="spawn")


def _rank(index: int, function: Callable[..., None], args: tuple[Any, ...]) -> None:
    """One worker: its rank in the environment torch.distributed and accelerate read, then the function."""
    os.environ["LOCAL_RANK"] = os.environ["RANK"] = str(index)
    function(*args)


def _free_port() -> int:
    """A TCP port free on this machine now, for the group's rendezvous (two trainings never share one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launched_by_accelerate() -> bool:
    """True in a process that `accelerate launch` (torchrun) started as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1
