"""Ctrl-C and SIGTERM at any moment: one line, exit 130, and a checkpoint that is whole when one is due.

Real processes where the process is the point (bursts of signals, signals during start-up);
in-process calls for the pieces (a save that a signal cannot cut, a signal Python dropped).
"""

import io
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import run_as_main

from torch_tanhnet.training import checkpoint, signals
from torch_tanhnet.training.config import TrainConfig
from torch_tanhnet.training.loop import train

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
linux_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")


def at_default():
    """SIGINT, SIGTERM, SIGHUP and SIGXCPU at their defaults in the child: the scripts keep a signal ignored that was
    ignored when they began (nohup's SIGHUP, a background job's SIGINT), and the test runner may have ignored them."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_DFL)


def launch(tmp_path, *args):
    """scripts/train.py in its own session (signals sent to it reach no one else), the signals at their defaults."""
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=at_default)


def caught(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler on ``sig`` (Linux: the SigCgt mask in /proc/PID/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def wait_until(condition, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def test_a_burst_of_signals_while_saving_still_saves_and_exits_130(tmp_path):
    # SIGHUP (a closed terminal, a dropped ssh session) killed the run without a save: before its first checkpoint
    # the folder was then refused by the same command and by --resume alike. The burst opens with SIGHUP (a Ctrl-C
    # and a SIGTERM alone are tests/test_train_cli.py's) and mixes all three, as a closing terminal and an impatient
    # user do.
    # a checkpoint every step: most of the loop's time is spent saving, where a burst of signals lands
    proc = launch(tmp_path, "--epochs", "1000000", "--checkpoint-interval", "1", "--log-interval", "1000",
                  "--image-interval", "1000000", "--logdir", "run", "--no-progress")
    ckpt = tmp_path / "run" / "checkpoint.pt"
    wait_until(ckpt.exists, proc)
    deadline = time.monotonic() + 30
    burst = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
    sent = 0
    while proc.poll() is None and time.monotonic() < deadline:  # a signal every millisecond until it has gone
        os.kill(proc.pid, burst[sent % 3])
        sent += 1
        time.sleep(0.001)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    state = checkpoint.load(ckpt)  # whole, and it is the interrupted run's last step
    assert f"interrupted at step {state['global_step']};" in out
    assert not list(ckpt.parent.glob(".checkpoint.pt.*.tmp"))


@linux_proc
def test_a_cpu_time_limit_reached_saves_the_run_and_exits_130(tmp_path):
    """`ulimit -S -t` (a batch system's CPU-time limit): its SIGXCPU killed the run without a word, its work since
    the last checkpoint lost, and a new run's folder left to be refused by the same command and by --resume. It is
    a stop like SIGTERM's: the checkpoint saved, the line that says how to continue, exit 130. (The limit is set once
    the run trains, a second of CPU time past what it has used: its imports take ~3 s, more on a slow machine.)"""
    import resource

    proc = launch(tmp_path, "--epochs", "100000000", "--checkpoint-interval", "100000000", "--log-interval", "1000",
                  "--image-interval", "100000000", "--logdir", "run", "--no-progress")
    wait_until(lambda: any((tmp_path / "run").glob("events.out.tfevents.*")), proc)
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    resource.prlimit(proc.pid, resource.RLIMIT_CPU, (math.ceil(used) + 1, resource.RLIM_INFINITY))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, (proc.returncode, err)
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    assert f"interrupted at step {state['global_step']}; checkpoint saved in run/checkpoint.pt" in out, out


def test_signals_ignored_when_the_run_began_stay_ignored(tmp_path):
    """nohup ignores SIGHUP so that a run outlives its terminal, and a shell starts `train.py &` with SIGINT ignored
    (`nohup train.py &`: both); the loop took them over (a background run stopped on a Ctrl-C meant for the
    foreground)."""
    def start():
        at_default()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--epochs", "1000000", "--checkpoint-interval", "1",
                             "--log-interval", "1000", "--image-interval", "1000000", "--logdir", "run",
                             "--no-progress"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=start)
    wait_until((tmp_path / "run" / "checkpoint.pt").exists, proc)
    for i in range(20):
        os.kill(proc.pid, (signal.SIGHUP, signal.SIGINT)[i % 2])
        time.sleep(0.02)
    time.sleep(0.5)
    assert proc.poll() is None  # still training
    os.kill(proc.pid, signal.SIGTERM)  # the one signal left to it: saves and stops, as Ctrl-C does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    state = checkpoint.load(tmp_path / "run" / "checkpoint.pt")  # whole, at the step it says
    assert f"interrupted at step {state['global_step']};" in out and "--resume" in out


def torch_loaded(pid: int) -> bool:
    """Whether process ``pid`` has mapped libtorch yet (Linux: /proc/PID/maps): its start-up is then mostly over."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return True


@linux_proc
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("burst", [False, True], ids=["one", "burst"])
def test_a_signal_while_starting_up_is_one_line_and_exit_130(tmp_path, sig, burst):
    # the script's first lines put a handler on SIGTERM (and SIGINT); torch's import, a second or more, follows.
    # The signal is sent in between; on a loaded machine this test may be descheduled past it, and then tries again.
    for attempt in range(5):
        proc = launch(tmp_path, "--epochs", "5", "--logdir", f"run{attempt}", "--no-progress")
        wait_until(lambda: caught(proc.pid, signal.SIGTERM), proc)
        if torch_loaded(proc.pid):  # too late to catch the start-up
            proc.kill()
            proc.communicate(timeout=60)
            continue
        os.kill(proc.pid, sig)
        deadline = time.monotonic() + 30
        while burst and proc.poll() is None and time.monotonic() < deadline:
            os.kill(proc.pid, sig)
            time.sleep(0.002)
        out, err = proc.communicate(timeout=60)
        if "interrupted at step" in out:  # this test was descheduled until the run had begun: a training stop
            continue
        assert proc.returncode == 130
        assert err.strip().splitlines() == ["train.py: interrupted before training began; nothing was saved"], (out,
                                                                                                                 err)
        assert not (tmp_path / f"run{attempt}" / "checkpoint.pt").exists()
        return
    pytest.fail("this test never sent its signal before the script had imported torch")


def small(tmp_path, **kw):
    return TrainConfig(**{**dict(n_samples=60, epochs=50, log_interval=5, image_interval=10**6,
                                 checkpoint_interval=10**6, logdir=str(tmp_path / "run"), progress=False), **kw})


def test_a_signal_that_python_dropped_during_start_up_still_stops_before_training(tmp_path, monkeypatch):
    # signals.interrupt remembers a signal whose KeyboardInterrupt Python swallowed (in a weakref callback
    # during an import, say): train() stops once the run is set up, before it trains or saves anything
    monkeypatch.setattr(signals, "received", signals.StopFlag())
    monkeypatch.setattr(signals, "_loop_over", False)
    with pytest.raises(KeyboardInterrupt):
        signals.interrupt(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):  # the run is set up, then stops before its first step
        train(small(tmp_path))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    signals.received.requested = False  # and once the run has ended, interrupt() absorbs signals
    train(small(tmp_path, logdir=str(tmp_path / "other")))
    signals.interrupt(signal.SIGINT, None)


def saving_with_a_signal_midway(monkeypatch, sig):
    """torch.save, as save_atomic calls it, with ``sig`` raised to this process halfway through the write."""
    real = torch.save

    def save(obj, f):
        f.write(b"")  # the temporary file is open: the save has begun
        signal.raise_signal(sig)
        real(obj, f)

    monkeypatch.setattr(checkpoint.torch, "save", save)


def test_a_signal_during_save_atomic_waits_until_the_file_is_whole(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"n": 1}, path)
    saving_with_a_signal_midway(monkeypatch, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):  # delivered, but only once the new file is in place
        checkpoint.save_atomic({"n": 2}, path)
    assert checkpoint.load(path)["n"] == 2
    assert not list(tmp_path.glob(".c.pt.*.tmp"))


def test_inside_stop_on_signals_a_signal_during_a_save_only_sets_the_flag(tmp_path, monkeypatch):
    saving_with_a_signal_midway(monkeypatch, signal.SIGTERM)
    before = signal.getsignal(signal.SIGTERM)
    with signals.stop_on_signals() as flag:
        checkpoint.save_atomic({"n": 3}, tmp_path / "c.pt")
        assert flag.requested
    assert checkpoint.load(tmp_path / "c.pt")["n"] == 3
    assert signal.getsignal(signal.SIGTERM) == before  # put back as it was


def test_after_the_work_a_signal_waits_for_the_exit(tmp_path, monkeypatch):
    """Everything was saved and said; a Ctrl-C during the interpreter's teardown (0.2-0.6 s) then ended sweep.py by
    the signal, silently (train.py ignored signals there already, the same two lines). The handlers as the teardown
    finds them: sweep.py's __main__ run here, its handlers read as its SystemExit leaves it (an atexit function's
    moment), from Python's own to begin with."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has them (conftest puts this
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # process's back after the test)
    monkeypatch.chdir(tmp_path)
    seen, err = [], io.StringIO()
    code = run_as_main("sweep", ["--seeds", "2", "--epochs", "2", "--gallery", "0", "--logdir", "out", "--no-progress"],
                       stdout=io.StringIO(), stderr=err,
                       at_exit=lambda: seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))))
    assert code == 0 and err.getvalue() == "", err.getvalue()
    assert seen == [(signal.SIG_IGN, signal.SIG_IGN)]
