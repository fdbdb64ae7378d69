"""A process of a local two-process group on 127.0.0.1, as torchrun would start it (for the distributed tests)."""

import os
import socket

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, size: int, port: int, config_kwargs: dict, fail_rank: int | None, errors,
           per_rank: list | None = None) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from torch_tanhnet.training.config import TrainConfig
    from torch_tanhnet.training.distributed import end_process, train_distributed

    if rank == fail_rank:  # join the group, then die without a word, as a crashed process would
        import torch.distributed as dist

        dist.init_process_group("gloo")
        os._exit(3)
    try:
        train_distributed(TrainConfig(**{**config_kwargs, **(per_rank[rank] if per_rank else {})}))
    except Exception as e:  # noqa: BLE001 - reported to the test
        errors.put((rank, type(e).__name__, str(e)))
        errors.close()
        errors.join_thread()  # the report is in the pipe before the process ends without teardown
        end_process(1)
    end_process(0)  # as scripts/train.py ends a torchrun process


def run(size: int, config_kwargs: dict, fail_rank: int | None = None, timeout: float = 120, meanwhile=None,
        per_rank: list | None = None):
    """Start ``size`` processes; returns (exit codes, [(rank, error type, message)]).

    ``per_rank[r]``, if given, are settings of process r alone (each its own --data, say).
    ``meanwhile(procs)``, if given, runs while they train (to signal one, say).
    """
    ctx = mp.get_context("forkserver")  # a fresh process, as torchrun starts one, made from a server that has
    ctx.set_forkserver_preload(["torch_tanhnet.training.distributed"])  # imported torch once (2.5 s a process)
    errors = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=worker, args=(r, size, port, config_kwargs, fail_rank, errors, per_rank))
             for r in range(size)]
    for p in procs:
        p.start()
    if meanwhile is not None:
        meanwhile(procs)
    for p in procs:
        p.join(timeout)
        if p.is_alive():
            p.kill()
            p.join()
    found = []
    while not errors.empty():
        found.append(errors.get())
    return [p.exitcode for p in procs], found
