"""A sweep under torchrun: each process trains a disjoint share of the runs; rank 0 gathers and writes.

    torchrun --standalone --nproc_per_node=2 scripts/sweep.py --hidden 1 2 3 --seeds 100
    torchrun --nnodes=4 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 scripts/sweep.py ...

The processes need no communication while training (runs are independent), so the process
group (gloo, on the CPU, whatever the device) serves one gather at the end: each process's
finished groups, as plain tensors, to rank 0. A process that fails or stops answering makes
the others fail at that gather after ``dist_timeout`` seconds with a DistributedError.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.distributed as dist

from ..training.distributed import (
    DistributedError,
    init_process_group,
    launched_by_torchrun,
    stopped_answering,
    torchrun_environment,
)
from ..training.setup import resolve_device
from ..training.world import World

__all__ = ["DistributedError", "launched_by_torchrun", "torchrun_world"]


@contextmanager
def torchrun_world(device_name: str, timeout: float):
    """(world, device, gather) for this torchrun process; the process group is destroyed on leaving."""
    rank, size, local_rank = torchrun_environment()
    device = resolve_device(device_name)  # --device cuda without CUDA: the one line, as without torchrun
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    init_process_group("gloo", rank, size, timeout)

    def answered(collective, *args, **kwargs) -> None:
        try:
            collective(*args, **kwargs)
        except RuntimeError as e:
            if (error := stopped_answering(e, rank, size, f"--dist-timeout {timeout:g} s")) is None:
                raise
            raise error from None

    def gather(obj) -> list | None:
        found = [None] * size if rank == 0 else None
        answered(dist.gather_object, obj, found, dst=0)
        return found

    def broadcast(obj):
        box = [obj]
        answered(dist.broadcast_object_list, box, src=0)
        return box[0]

    try:
        # every collective, the data check's all_reduce included: a process that failed reading its data left the
        # others in that check, which raised gloo's RuntimeError with a 30-line traceback
        world = World(rank, size, all_reduce=lambda t: answered(dist.all_reduce, t),
                      barrier=lambda: answered(dist.barrier), broadcast=broadcast)
        yield world, device, gather
    finally:
        dist.destroy_process_group()
