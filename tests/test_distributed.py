"""Data-parallel training: two gloo processes on 127.0.0.1 equal one process on the whole data."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from dist_worker import run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from torch_tanhnet.training import checkpoint
from torch_tanhnet.training.config import TrainConfig
from torch_tanhnet.training.loop import train

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def settings(logdir, **kw):
    base = dict(n_samples=120, epochs=20, log_interval=1, image_interval=10, checkpoint_interval=10,
                logdir=str(logdir), progress=False, dist_timeout=60.0)
    return {**base, **kw}


def final_params(logdir):
    return checkpoint.load(Path(logdir) / "checkpoint.pt")["model"]


def assert_same(a, b, tol):
    for k in "UbWc":
        torch.testing.assert_close(a[k], b[k], rtol=tol, atol=tol, msg=k)


# full batch, float32: the logs' test; full batch, float64, unequal shards: the resume's
CASES = {
    "mini-batches, uneven last batch, adam": (dict(n_samples=101, batch_size=30, epochs=5, optimizer="adam",
                                                   lr=0.05, dtype="float64"), 1e-12),
}


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_equal_one_process_on_the_whole_data(tmp_path, case):
    extra, tol = CASES[case]
    single = train(TrainConfig(**settings(tmp_path / "one", **extra)))
    codes, errors = run(2, settings(tmp_path / "two", **extra))
    assert codes == [0, 0] and not errors, errors
    assert single.global_step == checkpoint.load(tmp_path / "two" / "checkpoint.pt")["global_step"]
    assert_same(final_params(tmp_path / "two"), {k: v.cpu() for k, v in single.model.state_dict().items()}, tol)


def scalars(logdir):
    ea = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    ea.Reload()
    return ea


def test_logs_of_two_processes_have_the_same_tags_written_once(tmp_path):
    """And their parameters are the single process's (full batch, float32)."""
    single = train(TrainConfig(**settings(tmp_path / "one")))
    codes, errors = run(2, settings(tmp_path / "two"))
    assert codes == [0, 0] and not errors, errors
    assert single.global_step == checkpoint.load(tmp_path / "two" / "checkpoint.pt")["global_step"]
    assert_same(final_params(tmp_path / "two"), {k: v.cpu() for k, v in single.model.state_dict().items()}, 1e-6)
    one, two = scalars(tmp_path / "one"), scalars(tmp_path / "two")
    assert set(one.Tags()["scalars"]) == set(two.Tags()["scalars"])
    assert {"run/world_size", "run/step_ms"} <= set(two.Tags()["scalars"])
    assert [e.step for e in two.Scalars("loss/train")] == list(range(0, 21))  # once each, by rank 0 only
    assert {e.value for e in two.Scalars("run/world_size")} == {2.0}
    assert len(list((tmp_path / "two").glob("events.out.tfevents.*"))) == len(
        list((tmp_path / "one").glob("events.out.tfevents.*")))
    # the logged metrics are global: the same numbers as the single process's
    for tag in ("loss/train", "accuracy/test", "norm/grad/total"):
        a = [e.value for e in one.Scalars(tag)]
        b = [e.value for e in two.Scalars(tag)]
        assert b == pytest.approx(a, rel=1e-4, abs=1e-6), tag


def test_resume_under_two_processes_equals_an_uninterrupted_run(tmp_path):
    """Full batch, float64, on unequal shards (81 training samples: 41 and 40)."""
    single = train(TrainConfig(**settings(tmp_path / "one", n_samples=101, dtype="float64")))
    codes, _ = run(2, settings(tmp_path / "two", n_samples=101, epochs=10, dtype="float64"))
    assert codes == [0, 0]
    codes, errors = run(2, settings(tmp_path / "two", n_samples=101, epochs=20, dtype="float64", resume=True))
    assert codes == [0, 0], errors
    assert_same(final_params(tmp_path / "two"), {k: v.cpu() for k, v in single.model.state_dict().items()}, 1e-12)
    assert [e.step for e in scalars(tmp_path / "two").Scalars("loss/train")] == list(range(0, 21))


def test_a_failed_process_ends_the_others_with_a_clear_error_in_bounded_time(tmp_path):
    # bounded: run() fails the test past its timeout, long before 100000 epochs could end
    codes, errors = run(2, settings(tmp_path / "run", epochs=100000, dist_timeout=10.0), fail_rank=1, timeout=90)
    assert codes[0] == 1 and codes[1] == 3
    assert errors and errors[0][:2] == (0, "PeerFailed")  # a DistributedError: a consequence of the other's
    assert "another process failed or stopped answering" in errors[0][2]


def test_a_signal_to_one_process_stops_all_at_the_same_step_with_a_checkpoint(tmp_path):
    ckpt = tmp_path / "run" / "checkpoint.pt"

    def interrupt_rank_1(procs):
        deadline = time.monotonic() + 60
        while not ckpt.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(procs[1].pid, signal.SIGINT)  # as torchrun passes a Ctrl-C on, to one process first

    codes, errors = run(2, settings(tmp_path / "run", epochs=1_000_000, log_interval=5, checkpoint_interval=20),
                        meanwhile=interrupt_rank_1)
    assert codes == [0, 0] and not errors, (codes, errors)
    state = checkpoint.load(ckpt)
    assert state["global_step"] % 5 == 0 and state["global_step"] >= 20  # stopped together, at a log step
    steps = [e.step for e in scalars(tmp_path / "run").Scalars("loss/train")]
    assert steps[-1] == state["global_step"]


def test_torchrun_launches_the_script(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           "--epochs", "5", "--logdir", "run", "--no-progress"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("view it with: tensorboard --logdir run") == 1  # rank 0 alone speaks
    assert checkpoint.load(tmp_path / "run" / "checkpoint.pt")["global_step"] == 5


def test_under_torchrun_a_bad_setting_is_a_processs_one_line_and_ends_torchruns_report(tmp_path):
    # each process prints its one line first (or, stopped by torchrun because the other failed, says so);
    # torchrun then prints its own traceback and report, whose root cause now ends with that line
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           "--lr", "-1", "--no-progress"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    line = "train.py: error: argument --lr: must be a positive number, got -1.0"
    assert r.returncode != 0
    ours = [x for x in r.stderr.splitlines() if x.startswith("train.py: ")]
    assert line in ours and set(ours) <= {line, "train.py: interrupted before training began; nothing was saved"}
    assert r.stderr.index(line) < r.stderr.index("Traceback")  # the process's line comes first
    report = [x.strip() for x in r.stderr.splitlines() if x.strip().startswith("traceback :")]
    assert report[-1] == f"traceback : {line}"  # and last, in the root cause of torchrun's report


def test_a_plain_run_initialises_nothing_distributed(tmp_path):
    train(TrainConfig(**settings(tmp_path / "plain", epochs=2)))
    assert not dist.is_initialized()


def test_end_process_flushes_the_output_and_exits_with_the_code():
    # what a torchrun process runs last (scripts/train.py): its output must not be lost with the teardown
    code = ("import sys; from torch_tanhnet.training.distributed import end_process; "
            "print('summary', end=''); print('warning', end='', file=sys.stderr); end_process(3)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (3, "summary", "warning")


def test_processes_that_read_different_data_all_refuse_it_in_one_line(tmp_path):
    """A --data file changed while torchrun starts its processes: each reads other rows (here, other files, of
    other lengths, which with --batch-size would hang); every process refuses before training."""
    for name, n in (("a.csv", 40), ("b.csv", 50)):
        (tmp_path / name).write_text("x1,x2,label\n" + "".join(f"{i / n:.3f},{(i * 7 % n) / n:.3f},{i % 2}\n"
                                                                 for i in range(n)))
    codes, errors = run(2, settings(tmp_path / "two", batch_size=8, epochs=2, dist_timeout=30.0), timeout=60,
                        per_rank=[{"data": str(tmp_path / "a.csv")}, {"data": str(tmp_path / "b.csv")}])
    assert codes == [1, 1] and sorted(r for r, _, _ in errors) == [0, 1], (codes, errors)
    for _, kind, message in errors:
        assert kind == "DataError" and "\n" not in message and "2 processes read different data" in message, message



@pytest.mark.parametrize("script, reader", [("train.py", "torch_tanhnet.training.setup"),
                                            ("sweep.py", "torch_tanhnet.sweep.plan")])
def test_torchruns_report_names_the_process_that_failed_not_the_one_it_stopped(tmp_path, script, reader):
    """Rank 1 fails reading its data; rank 0, waiting for it at the data check, stops in the same second. Each says so
    in one line (sweep.py's rank 0 printed gloo's 30-line traceback), and torchrun's report names as root cause the
    earliest failure (whole seconds, the lowest rank on a tie): it named rank 0's consequence, not rank 1's reason."""
    (tmp_path / "x.csv").write_text("x1,x2,label\n" + "".join(f"{i / 20:.2f},{i % 7 / 7:.2f},{i % 2}\n"
                                                              for i in range(20)))
    (tmp_path / "wrap.py").write_text(
        "import importlib, os, runpy, sys\n"
        "from torch_tanhnet.training.data import DataError\n"
        f"module = importlib.import_module({reader!r})\n"
        "read = module.load_csv\n"
        "def load_csv(path):\n"
        "    if os.environ['RANK'] == '1':\n"
        "        raise DataError(f'cannot read {path!r}: permission denied (on rank 1 only)')\n"
        "    return read(path)\n"
        "module.load_csv = load_csv\n"
        f"sys.path.insert(0, {str(SCRIPT.parent)!r})\n"
        f"sys.argv = [{str(SCRIPT.parent / script)!r}] + sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "wrap.py",
           "--data", "x.csv", "--epochs", "5", "--logdir", "run", "--no-progress"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    line = f"{script}: error: cannot read 'x.csv': permission denied (on rank 1 only)"
    ours = [x for x in r.stderr.splitlines() if x.startswith(f"{script}: ")]
    assert r.returncode != 0 and line in ours, r.stderr[-3000:]
    assert len(ours) == 2 and "another process failed or stopped answering" in (set(ours) - {line}).pop()
    assert "[rank0]" not in r.stderr and r.stderr.count("Traceback") == 1  # torchrun's own, after the lines
    cause = r.stderr.split("Root Cause", 1)[1]
    assert "rank      : 1 (local_rank: 1)" in cause and cause.split("traceback :", 1)[1].strip().startswith(line)
    assert not (tmp_path / "run").exists()


def test_a_process_that_stopped_because_another_failed_is_stamped_after_it(tmp_path, monkeypatch):
    """torchrun's report names the earliest failure in whole seconds, the lowest rank on a tie: a process that stopped
    because of another's failure (PeerFailed, or interrupted by torchrun's SIGTERM) leaves its line a second later."""
    import json

    from torch_tanhnet.training.distributed import record_error

    error_file = tmp_path / "error.json"
    for key, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": "29500", "TORCHELASTIC_ERROR_FILE": str(error_file)}.items():
        monkeypatch.setenv(key, value)
    before = int(time.time())
    record_error("train.py: error: the cause")
    cause = json.loads(error_file.read_text())
    record_error("train.py: interrupted before training began; nothing was saved", consequence=True)
    consequence = json.loads(error_file.read_text())
    assert cause["message"] == "train.py: error: the cause" and before <= cause["timestamp"] <= time.time()
    assert consequence["timestamp"] >= cause["timestamp"] + 1
