"""What a sweep's processes under torchrun print and accept, in-process: resume hints, shares of another world
size, a finished sweep's table (rank 0 alone), the default folder one name for all."""

import importlib.util
import shlex
from pathlib import Path

import pytest

from torch_tanhnet.sweep import state
from torch_tanhnet.sweep.config import SweepConfig
from torch_tanhnet.sweep.runner import sweep
from torch_tanhnet.training.checkpoint import CheckpointError
from torch_tanhnet.training.world import World

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sweep.py"
_spec = importlib.util.spec_from_file_location("sweep_cli_ranks", SCRIPT)
cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli)


def test_resume_command_names_torchrun_with_the_sweeps_number_of_processes(monkeypatch, tmp_path):
    monkeypatch.chdir(SCRIPT.parents[1])  # the project's root: scripts/sweep.py
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert cli.resume_command("sw", 1) == "python scripts/sweep.py --logdir sw --resume"
    assert cli.resume_command("my sweeps/a", 1) == "python scripts/sweep.py --logdir 'my sweeps/a' --resume"  # quoted
    monkeypatch.chdir(tmp_path)  # elsewhere: the script by its whole path, which works from there
    assert cli.resume_command("sw", 1) == f"python {shlex.quote(str(SCRIPT))} --logdir sw --resume"
    monkeypatch.chdir(SCRIPT.parents[1])
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert cli.resume_command("sw", 2) == "torchrun --standalone --nproc_per_node=2 scripts/sweep.py --logdir sw " \
                                          "--resume"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert cli.resume_command("sw", 8).startswith("torchrun --nnodes=2 --nproc_per_node=4 ")


@pytest.mark.parametrize("size", [1, 3])
def test_shares_of_another_number_of_processes_are_named_not_missed(tmp_path, size):
    for rank in range(2):
        (tmp_path / f"checkpoint.rank{rank}-of-2.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"checkpointed by 2 process\(es\); resume it with as many, not "
                                              f"{size}$"):
        state.load(tmp_path, 0, size)


def test_no_checkpoint_at_all_is_still_named_so(tmp_path):
    with pytest.raises(CheckpointError, match="no sweep checkpoint"):
        state.load(tmp_path, 0, 2)


def test_a_finished_sweep_resumed_prints_its_table_on_rank_0_alone(tmp_path, capsys):
    args = ["--hidden", "1", "--seeds", "2", "--epochs", "5", "--n-samples", "20", "--device", "cpu",
            "--logdir", str(tmp_path / "sw"), "--no-progress", "--gallery", "0"]
    config = cli.make_config(cli.build_parser().parse_args(args))
    sweep(config)
    capsys.readouterr()
    resumed = cli.make_config(cli.build_parser().parse_args(["--logdir", str(tmp_path / "sw"), "--resume",
                                                              "--no-progress"]))
    given = cli.given_settings(["--logdir", str(tmp_path / "sw"), "--resume", "--no-progress"])
    assert cli.report(SweepConfig(**vars(resumed)), given, World(1, 2), None, None) == 0
    assert capsys.readouterr().out == ""
    assert cli.report(SweepConfig(**vars(resumed)), given, World(0, 2), None, None) == 0
    assert "is complete; its results" in capsys.readouterr().out


def test_under_torchrun_rank_0_claims_the_default_folder_and_the_others_take_its_name(tmp_path, monkeypatch):
    from torch_tanhnet.sweep.runner import prepare

    monkeypatch.chdir(tmp_path)
    config = SweepConfig(values={"hidden": [1]}, seeds=[0, 1], device="cpu", progress=False)
    sent = []

    def from_rank_0(name):
        sent.append(name)
        return name

    _, main_dir, _ = prepare(config, World(0, 2, broadcast=from_rank_0))
    assert main_dir.is_dir() and sent == [str(main_dir)]  # made by rank 0, its name sent
    _, other_dir, _ = prepare(config, World(1, 2, broadcast=lambda name: str(main_dir)))
    assert other_dir == main_dir and list(Path("sweeps").iterdir()) == [main_dir]  # rank 1 made none


def test_under_torchrun_a_failed_sweep_leaves_its_line_for_torchruns_report(tmp_path, monkeypatch, capsys):
    """torchrun's closing report ends with the line a process left in $TORCHELASTIC_ERROR_FILE (train.py's did;
    sweep.py's did not, so its report pointed at torch's docs instead)."""
    import json
    import socket

    with socket.socket() as s:  # a free port for a world of one process
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error_file = tmp_path / "error.json"
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "TORCHELASTIC_ERROR_FILE": str(error_file)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = cli.main(["--lr", "-1", "--seeds", "1", "--logdir", str(tmp_path / "sw")])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and line.startswith("sweep.py: error: argument --lr")
    assert json.loads(error_file.read_text())["message"] == line


def test_a_ctrl_c_that_finds_a_process_waiting_at_the_gather_is_an_interrupt(tmp_path, monkeypatch):
    """Under torchrun a Ctrl-C reaches every process; one that had trained its share waits at the gather, absorbs it,
    and then sees the others leave: it printed "another process failed or stopped answering" and no resume hint.
    With the signal noted (signals.late) the sweep is interrupted, its share checkpointed; without, a failure."""
    from torch_tanhnet.sweep import runner
    from torch_tanhnet.sweep.config import SweepConfig
    from torch_tanhnet.training import signals
    from torch_tanhnet.training.distributed import PeerFailed
    from torch_tanhnet.training.world import World

    def left(obj):
        raise PeerFailed("process 0 of 2: another process failed or stopped answering within --dist-timeout 5 s")

    config = SweepConfig(values={"epochs": [2], "n_samples": [20]}, seeds=[0, 1], logdir=str(tmp_path / "sw"),
                         progress=False, gallery=0)
    plan, logdir, found = runner.prepare(config, World(0, 2, broadcast=lambda obj: obj))
    monkeypatch.setattr(signals, "late", signals.StopFlag())
    with pytest.raises(PeerFailed):
        runner.finish(plan, logdir, found, World(0, 2), left)
    monkeypatch.setattr(signals, "_loop_over", True)  # the share trained: the script's handler absorbs, and notes
    signals.interrupt(2, None)
    result = runner.finish(plan, logdir, found, World(0, 2), left)
    assert result.interrupted and result.results is None



def test_a_signal_absorbed_after_one_loop_says_nothing_of_the_next():
    """signals.late was never cleared: a signal absorbed after one sweep made a later sweep's genuine failure at
    the gather an interrupt. Each loop starts with it clear."""
    from torch_tanhnet.training import signals

    signals.late.set()
    with signals.stop_on_signals():
        assert not signals.late.requested
