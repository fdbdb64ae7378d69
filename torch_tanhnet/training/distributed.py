"""Data-parallel training under torchrun: one process per device, DistributedDataParallel, exact full-batch ε.

    torchrun --standalone --nproc_per_node=2 scripts/train.py --dataset moons
    torchrun --nnodes=2 --nproc_per_node=4 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 scripts/train.py ...

Each process holds the whole (seeded) data set and trains on every world_size-th sample
of each batch, from rank on. Its loss is ε over its own share scaled by
n_rank · world_size / n_batch, so that DDP's mean of the processes' gradients is exactly
the gradient of ε over the whole batch, however unequal the shares. Metrics are sums
all-reduced over the processes; only rank 0 writes logs, the progress bar and checkpoints.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..module import TanhNet
from .config import ConfigError, TrainConfig
from .loop import TrainResult, train
from .setup import resolve_device
from .wording import Worded, setting
from .world import World


class DistributedError(Worded, RuntimeError):
    """Another process failed or stopped answering; one line for the user."""


class PeerFailed(DistributedError):
    """This process stopped because another one failed or stopped answering: a consequence, not the cause."""


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def torchrun_environment() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; ConfigError, in one line naming the variable,
    when one is not what torchrun sets (as when the environment was set by hand)."""
    def integer(name: str, expected: str, low: int, high: int | None = None) -> int:
        text = os.environ[name]
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or high is not None and value >= high:
            raise ConfigError(f"environment variable {name}: expected {expected}, got {text!r} (torchrun sets it; "
                              "start the script with torchrun, or set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR "
                              "and MASTER_PORT as torchrun does)")
        return value

    size = integer("WORLD_SIZE", "a positive integer (the number of processes)", 1)
    rank = integer("RANK", f"an integer in [0, WORLD_SIZE={size})", 0, size)
    local_rank = integer("LOCAL_RANK", "an integer ≥ 0", 0)
    integer("MASTER_PORT", "a port number in [1, 65535]", 1, 65536)
    if not os.environ["MASTER_ADDR"].strip():  # set but empty: torch's 32-line traceback
        raise ConfigError(f"environment variable MASTER_ADDR: expected the name or address of rank 0's machine, got "
                          f"{os.environ['MASTER_ADDR']!r} (torchrun sets it; start the script with torchrun, or set "
                          "it as torchrun does)")
    return rank, size, local_rank


MAX_TIMEOUT_S = 1e9


def init_process_group(backend: str, rank: int, size: int, timeout: float) -> None:
    """torch's init_process_group, its failure to meet the other processes as a DistributedError in one line.
    MASTER_ADDR is looked up first: one that names no machine was said after 46 lines of torch's connection logs."""
    address, port = os.environ.get("MASTER_ADDR", ""), os.environ.get("MASTER_PORT", "")  # (read by torch again)
    try:
        if address:
            socket.getaddrinfo(address, None)
    except (socket.gaierror, UnicodeError) as e:
        raise DistributedError(f"process {rank} of {size} could not start: MASTER_ADDR {address!r} names no machine "
                               f"that can be found ({getattr(e, 'strerror', None) or e})") from None
    except OSError:
        pass  # torch's own attempt says what it is
    try:  # at most 1e9 s (31 years: no wait longer means more): past about 8.6e13 s timedelta overflows (a
        # traceback for --dist-timeout 1e14), and past 9.2e9 s a clock in int64 nanoseconds
        dist.init_process_group(backend, timeout=timedelta(seconds=min(timeout, MAX_TIMEOUT_S)))
    except (RuntimeError, ValueError) as e:  # DistStoreError, DistNetworkError: a peer or the store never answered
        if not _communication_failure(e) and not isinstance(e, getattr(dist, "DistError", ())):
            raise
        first = (str(e).strip().splitlines() or ["no detail"])[0].split("] ", 1)[-1]
        raise DistributedError(f"process {rank} of {size} could not start: at the rendezvous {address}:{port} "
                               f"(MASTER_ADDR:MASTER_PORT) {_why(str(e), rank, size, address, port, timeout)} "
                               f"({first})") from None


def _why(text: str, rank: int, size: int, address: str, port: str, timeout: float) -> str:
    """What failed at the rendezvous, in words: a port already taken, else the processes that did not meet within
    the timeout (every failure read as that once: "the other 0 process(es) of WORLD_SIZE=1 did not all join within
    30 s" for a port in use, 1.5 s after the start)."""
    if "EADDRINUSE" in text or "address already in use" in text.lower():
        return (f"MASTER_PORT {port} is already in use on this machine: choose another (torchrun's --master-port) "
                "or stop what holds it")
    if rank != 0:
        return f"rank 0 did not answer within {setting('dist_timeout')} {timeout:g} s"
    if size == 1:
        return "the rendezvous could not be opened"
    return (f"the other {size - 1} process(es) of WORLD_SIZE={size} did not all join within "
            f"{setting('dist_timeout')} {timeout:g} s")


class LossModule(nn.Module):
    """forward(X, y) = net.loss(X, y): what DDP wraps, so that its hooks see the training path."""

    def __init__(self, net: TanhNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if X.shape[0] == 0:  # a batch smaller than the world leaves this process nothing: a zero
            return sum((p * 0).sum() for p in self.net.parameters())  # that still reaches every parameter
        return self.net.loss(X, y)


def record_error(line: str, consequence: bool = False) -> None:
    """Under torchrun, leave a process's one-line error where torchrun's closing report reads it
    (``$TORCHELASTIC_ERROR_FILE``): the report then ends with that line instead of a pointer to
    torch's docs. Elsewhere, or if the file cannot be written, nothing happens.

    ``consequence``: the process failed because another did (:class:`PeerFailed`). torchrun names as
    "Root Cause" the failure with the earliest timestamp, in whole seconds, the lowest rank on a tie:
    a rank 0 that lost a rank 1 in the same second was named, with "another process failed". Such a
    failure is stamped a second later, so that the report leads with the process that failed first."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or not launched_by_torchrun():
        return
    try:
        with open(path, "w") as f:
            json.dump({"message": line, "timestamp": int(time.time()) + int(consequence)}, f)
    except OSError:
        pass


def end_process(code: int) -> NoReturn:
    """End a torchrun process with ``code``, its output flushed, skipping the interpreter's teardown.

    Call it only when the run is over (``train_distributed`` returned or raised): every file is
    closed by then and the checkpoint is on disk. Why: with DistributedDataParallel the gloo process
    group outlives ``destroy_process_group`` (torch 2.13: its worker threads keep running), and a
    worker thread that drops a finished collective holding a tensor made in Python needs the GIL.
    If the interpreter is already tearing down, that thread is killed and the process aborts
    (SIGABRT, "terminate called without an active exception") after a run that succeeded: seen in
    a few percent of the test suite's two-process runs on the 2-core development machine.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _communication_failure(e: RuntimeError) -> bool:
    """Whether an error came from the process group: a lost peer or a collective that timed out."""
    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    text = str(e)
    return any(mark in text for mark in ("gloo", "NCCL", "c10d", "Connection closed", "timed out", "Timed out"))


def stopped_answering(e: RuntimeError, rank: int, size: int, waited: str) -> PeerFailed | None:
    """The one line for a collective that failed because another process did (``waited``: the limit, in words), as
    a DistributedError to raise; None for any other error (which is raised as it is)."""
    if not _communication_failure(e):
        return None
    first = (str(e).strip().splitlines() or ["no detail"])[0].split("] ", 1)[-1]
    return PeerFailed(f"process {rank} of {size}: another process failed or stopped answering within "
                      f"{waited} ({first})")


def train_distributed(config: TrainConfig, given: set[str] | None = None,
                      on_error: Callable[[BaseException], None] | None = None) -> TrainResult | None:
    """Train as one process of a torchrun launch; returns the result on rank 0, None elsewhere. ``on_error`` is
    called with an error before the process group goes (then the error is raised): the other processes fail once
    it goes, and a script that says and records its line there is the first in torchrun's report, not after them."""
    rank, size, local_rank = torchrun_environment()
    config.validate()
    device = resolve_device(config.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    init_process_group(backend, rank, size, config.dist_timeout)
    try:
        world = World(rank, size, all_reduce=dist.all_reduce, barrier=dist.barrier)
        ids = [device.index] if device.type == "cuda" else None

        def wrap(net: TanhNet) -> nn.Module:
            return DistributedDataParallel(LossModule(net), device_ids=ids)

        try:
            result = train(config, world, given, wrap=wrap, device=device)
        except RuntimeError as e:
            waited = f"{setting('dist_timeout')} {config.dist_timeout:g} s"
            if (error := stopped_answering(e, rank, size, waited)) is None:
                raise
            raise error from None
        return result if rank == 0 else None
    except BaseException as e:
        if on_error is not None:
            on_error(e)
        raise
    finally:
        dist.destroy_process_group()
