"""torchrun's environment set by hand, or a rendezvous nobody answers: one line naming what was expected, in-process."""

import pytest
import torch
import torch.distributed as dist

from torch_tanhnet.training import distributed
from torch_tanhnet.training.config import ConfigError

ENV = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("name, value, expected", [
    ("WORLD_SIZE", "abc", "environment variable WORLD_SIZE: expected a positive integer"),
    ("WORLD_SIZE", "0", "environment variable WORLD_SIZE: expected a positive integer"),
    ("RANK", "5", r"environment variable RANK: expected an integer in \[0, WORLD_SIZE=2\), got '5'"),
    ("RANK", "-1", r"environment variable RANK: expected an integer in \[0, WORLD_SIZE=2\), got '-1'"),
    ("LOCAL_RANK", "x", "environment variable LOCAL_RANK: expected an integer ≥ 0, got 'x'"),
    ("MASTER_PORT", "99999", r"environment variable MASTER_PORT: expected a port number in \[1, 65535\]"),
])
def test_a_bad_torchrun_variable_is_named_in_one_line(monkeypatch, name, value, expected):
    for key, v in {**ENV, name: value}.items():
        monkeypatch.setenv(key, v)
    with pytest.raises(ConfigError, match=expected) as e:
        distributed.torchrun_environment()
    assert "\n" not in e.value.for_command_line()


def test_a_good_environment_is_read(monkeypatch):
    for key, v in {**ENV, "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(key, v)
    assert distributed.torchrun_environment() == (1, 2, 1)


@pytest.mark.skipif(not hasattr(dist, "DistStoreError"), reason="torch without DistStoreError")
@pytest.mark.parametrize("rank, whom", [(0, "the other 1 process(es) of WORLD_SIZE=2 did not all join"),
                                        (1, "rank 0 did not answer")])
def test_a_rendezvous_that_times_out_is_one_line_naming_who_did_not_answer(monkeypatch, rank, whom):
    for key, v in ENV.items():
        monkeypatch.setenv(key, v)

    def timed_out(*args, **kwargs):
        raise dist.DistStoreError("Timed out after 6 seconds waiting for clients. 1/2 clients joined.\nmore lines")

    monkeypatch.setattr(dist, "init_process_group", timed_out)
    with pytest.raises(distributed.DistributedError) as e:
        distributed.init_process_group("gloo", rank, 2, 5.0)
    line = e.value.for_command_line()
    assert line == (f"process {rank} of 2 could not start: at the rendezvous 127.0.0.1:29500 (MASTER_ADDR:MASTER_PORT) "
                    f"{whom} within --dist-timeout 5 s (Timed out after 6 seconds waiting for clients. 1/2 clients "
                    "joined.)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
@pytest.mark.parametrize("where", ["train", "sweep"])
def test_device_cuda_without_cuda_under_torchrun_is_the_one_line_it_is_without(monkeypatch, where):
    # the sweep chose its device itself under torchrun: torch.cuda.set_device's AttributeError, a traceback
    for key, v in {**ENV, "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, v)
    if where == "sweep":
        from torch_tanhnet.sweep.distributed import torchrun_world
        with pytest.raises(ConfigError) as e, torchrun_world("cuda", 5.0):
            pass
    else:
        from torch_tanhnet.training.config import TrainConfig
        with pytest.raises(ConfigError) as e:
            distributed.train_distributed(TrainConfig(device="cuda"))
    assert e.value.for_command_line() == "argument --device: cuda is not available on this machine"


def test_train_distributed_hands_an_error_over_before_its_process_group_goes(monkeypatch):
    """train.py said and recorded its error after train_distributed destroyed the process group: the other process,
    failing as soon as it went, could record first and be named torchrun's root cause (as sweep.py's once was)."""
    import socket

    from torch_tanhnet.training import TrainConfig
    from torch_tanhnet.training.data import DataError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, v in {**ENV, "WORLD_SIZE": "1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, v)
    order = []

    def fails(*args, **kwargs):
        raise DataError("cannot read 'x.csv'")

    destroy = dist.destroy_process_group
    monkeypatch.setattr(distributed, "train", fails)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: (order.append("group gone"), destroy()))
    with pytest.raises(DataError):
        distributed.train_distributed(TrainConfig(progress=False), on_error=lambda e: order.append(str(e)))
    assert order == ["cannot read 'x.csv'", "group gone"]
    assert not dist.is_initialized()


@pytest.mark.skipif(not hasattr(dist, "DistNetworkError"), reason="torch without DistNetworkError")
@pytest.mark.parametrize("case", ["port in use", "one process"])
def test_a_rendezvous_that_fails_says_why_not_that_the_others_were_late(monkeypatch, case):
    """Every rendezvous failure read as a timeout of the other processes: a port in use said "the other 0
    process(es) of WORLD_SIZE=1 did not all join within --dist-timeout 30 s", 1.5 s after the start."""
    for key, v in {**ENV, "WORLD_SIZE": "1", "MASTER_PORT": "29517"}.items():
        monkeypatch.setenv(key, v)
    text = {"port in use": "The server socket has failed to listen on any local network address. port: 29517, "
                           "useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use",
            "one process": "Ping failed, invalid value returned from server."}[case]

    def fails(*args, **kwargs):
        raise dist.DistNetworkError(text)

    monkeypatch.setattr(dist, "init_process_group", fails)
    with pytest.raises(distributed.DistributedError) as e:
        distributed.init_process_group("gloo", 0, 1, 30.0)
    why = {"port in use": "MASTER_PORT 29517 is already in use on this machine: choose another (torchrun's "
                          "--master-port) or stop what holds it",
           "one process": "the rendezvous could not be opened"}[case]
    assert e.value.for_command_line() == (f"process 0 of 1 could not start: at the rendezvous 127.0.0.1:29517 "
                                          f"(MASTER_ADDR:MASTER_PORT) {why} ({text})")


def test_a_master_addr_that_names_no_machine_is_said_before_torch_tries_it(monkeypatch):
    """An unknown MASTER_ADDR was said after about 46 lines of torch's connection logs, an empty one in a 32-line
    traceback: the one is looked up first, the other refused with the variables."""
    import socket

    for key, v in {**ENV, "WORLD_SIZE": "1", "MASTER_ADDR": "no-such-host.invalid"}.items():
        monkeypatch.setenv(key, v)

    def unknown(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def never(*args, **kwargs):
        raise AssertionError("torch was asked")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    monkeypatch.setattr(dist, "init_process_group", never)
    with pytest.raises(distributed.DistributedError) as e:
        distributed.init_process_group("gloo", 0, 1, 30.0)
    assert e.value.for_command_line() == ("process 0 of 1 could not start: MASTER_ADDR 'no-such-host.invalid' names "
                                          "no machine that can be found (Name or service not known)")
    for empty in ("", "  "):
        monkeypatch.setenv("MASTER_ADDR", empty)
        with pytest.raises(ConfigError, match=r"^environment variable MASTER_ADDR: expected the name or address of "
                                              rf"rank 0's machine, got {empty!r} \(torchrun sets it"):
            distributed.torchrun_environment()
