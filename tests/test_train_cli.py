"""scripts/train.py as a user runs it: a subprocess, exit codes, messages, signals."""

import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import load_script

from torch_tanhnet.training import checkpoint

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train.py"


def run(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_dry_run_trains_logs_and_says_how_to_look(tmp_path, monkeypatch, capsys):
    code, out = in_process_output(["--dry-run", "--logdir", "out"], tmp_path, monkeypatch, capsys)
    assert code == 0
    assert (tmp_path / "out" / "checkpoint.pt").is_file() and list((tmp_path / "out").glob("events.out.tfevents.*"))
    assert "tensorboard --logdir out" in out
    assert "steps/s" in out and "test loss" in out


def test_dry_run_without_logdir_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    code, out = in_process_output(["--dry-run", "--epochs", "1"], tmp_path, monkeypatch, capsys)
    assert code == 0
    assert list(tmp_path.iterdir()) == []
    assert "dry run: nothing kept" in out and "tensorboard" not in out
    assert re.search(r"^1 step in [\d.]+ s", out, re.M)  # one full-batch epoch: not "1 steps"


def test_a_run_without_logdir_is_named_by_its_time_and_data_set(tmp_path, monkeypatch, capsys):
    code, out = in_process_output(["--epochs", "2", "--n-samples", "40"], tmp_path, monkeypatch, capsys)
    assert code == 0
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and re.fullmatch(r"\d{4}-\d{6}-moons-e2-n40", runs[0].name)  # MMDD-HHMMSS-dataset-changes
    assert (runs[0] / "checkpoint.pt").is_file() and list(runs[0].glob("events.out.tfevents.*"))
    assert f"tensorboard --logdir {Path('runs') / runs[0].name}" in out
    assert "steps/s" in out and "test loss" in out


def test_csv_data_end_to_end(tmp_path, monkeypatch, capsys):
    X = torch.randn(60, 2, generator=torch.Generator().manual_seed(0))
    rows = "\n".join(f"{a},{b},{int(a > b)}" for a, b in X.tolist())
    (tmp_path / "pts.csv").write_text("x1,x2,label\n" + rows + "\n")
    code, _ = in_process_output(["--data", "pts.csv", "--standardize", "--epochs", "300", "--logdir", "out"], tmp_path,
                                monkeypatch, capsys)
    assert code == 0
    state = checkpoint.load(tmp_path / "out" / "checkpoint.pt")
    assert state["metrics"]["accuracy/train"] > 0.9


def csv(tmp_path, text):
    (tmp_path / "d.csv").write_text(text)
    return "d.csv"


BAD_INPUTS = [
    (lambda p: ["--dataset", "blobs"], "argument --dataset: unknown dataset 'blobs'"),
    (lambda p: ["--data", "missing.csv"], "data file 'missing.csv' does not exist"),
    (lambda p: ["--data", csv(p, "")], "data file 'd.csv' has no data rows"),
    (lambda p: ["--data", csv(p, "1,2,0\n1,2\n")], "d.csv:2: expected 3 columns"),
    (lambda p: ["--data", csv(p, "1,2,0\n1,2,3\n")], "d.csv:2: label must be 0 or 1, got 3"),
    (lambda p: ["--data", csv(p, "1,2,0\nnan,2,1\n")], "d.csv:2: features must be finite"),
    (lambda p: ["--n-samples", "3", "--test-fraction", "0.1"], "too few samples for the split"),
    (lambda p: ["--lr", "-0.1"], "argument --lr: must be a positive number, got -0.1"),
    (lambda p: ["--init-scale", "0"], "argument --init-scale: must be a positive number, got 0.0"),
    (lambda p: ["--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (lambda p: ["--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
    (lambda p: ["--seed", "99999999999999999999"], "argument --seed: must be an integer in [0, 2**32)"),
    (lambda p: ["--hidden", "0"], "argument --hidden: must be a positive integer, got 0"),
    (lambda p: ["--test-fraction", "1.5"], "argument --test-fraction: must be between 0 and 1"),
    (lambda p: ["--noise", "nan"], "argument --noise: must be a number ≥ 0, got nan"),
    (lambda p: ["--resume"], "argument --resume: needs --logdir"),
    (lambda p: ["--logdir", "nothing-here", "--resume"], "'nothing-here' does not exist: --resume continues a run in "
                                                         "an existing folder"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append((lambda p: ["--device", "cuda"], "argument --device: cuda is not available on this machine"))


def main_here(argv, cwd, monkeypatch):
    """train.py's main(argv) in this process (each subprocess costs ~2 s of imports): its exit code. What the
    process itself adds (streams, signals, the exit status) is tested with real processes below."""
    cli = load_script("train")
    monkeypatch.chdir(cwd)
    try:
        return cli.main(list(argv))
    except SystemExit as e:  # argparse's own errors
        return e.code


def in_process(argv, cwd, monkeypatch, capsys):
    """(exit code, stderr) of main(argv) in this process."""
    code = main_here(argv, cwd, monkeypatch)
    return code, capsys.readouterr().err


def in_process_output(argv, cwd, monkeypatch, capsys):
    """(exit code, stdout) of a run that says nothing on stderr."""
    code = main_here(argv, cwd, monkeypatch)
    out, err = capsys.readouterr()
    assert err == "", err
    return code, out


@pytest.mark.parametrize("make_args,message", BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, monkeypatch, capsys, make_args, message):
    code, err = in_process(make_args(tmp_path), tmp_path, monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and message in last, err


def test_bad_input_from_the_shell_is_one_error_line_and_exit_2(tmp_path):
    # as a shell sees it, once: the exit code and the one line through train.py's __main__ (each kind of bad input
    # in this process, above; a data file's error took a shell run of its own, the same __main__ path)
    make_args, message = BAD_INPUTS[0]
    r = run(*make_args(tmp_path), cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and message in last, r.stderr


def wait_for(path, timeout=60, replaced=None):
    """Until ``path`` exists (and, given an inode, has been replaced by a newer file)."""
    deadline = time.monotonic() + timeout
    while not path.exists() or (replaced is not None and path.stat().st_ino == replaced):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def start(tmp_path, *extra, logdir="run"):
    args = ["--epochs", "1000000", "--checkpoint-interval", "1", "--log-interval", "50", "--image-interval",
            "1000000", "--logdir", logdir, "--no-progress", *extra]
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_at_any_moment_leaves_a_whole_checkpoint(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / "run" / "checkpoint.pt"
    steps = []
    for i, delay in enumerate([0.0, 0.13, 0.37]):
        before = ckpt.stat().st_ino if i else None
        proc = start(tmp_path, *(["--resume"] if i else []))
        try:
            wait_for(ckpt, replaced=before)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        state = checkpoint.load(ckpt)  # whole: it loads, with every field
        assert set(state["model"]) == {"U", "b", "W", "c"}
        steps.append(state["global_step"])
    assert steps == sorted(steps) and steps[-1] > steps[0]
    # a later run tidies temporary files a kill left behind, and resumes from the checkpoint
    code, err = in_process(["--logdir", "run", "--resume", "--epochs", str(steps[-1] + 3), "--no-progress"], tmp_path,
                           monkeypatch, capsys)
    assert code == 0, err
    assert not list((tmp_path / "run").glob(".checkpoint.pt.*.tmp"))


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path, monkeypatch, capsys):
    """And the commands it prints work when pasted: a folder with a space was printed bare (`tensorboard --logdir
    my runs/b` opens `my`), and the resume hint named scripts/train.py from any folder: quoted now, and the script
    as the working folder reaches it. (A SIGTERM's save: tests/test_signals.py, which ends its runs with one.)"""
    proc = start(tmp_path, logdir="my runs/b")
    wait_for(tmp_path / "my runs" / "b" / "checkpoint.pt")
    # a --resume while the run still writes was accepted: both saved one checkpoint.pt in turn, its step went back
    code, err = in_process(["--logdir", "my runs/b", "--resume", "--epochs", "1", "--no-progress"], tmp_path,
                           monkeypatch, capsys)  # --epochs 1: were it accepted again, it would end at once
    assert (code, err) == (2, "train.py: error: argument --logdir: 'my runs/b' is being written by a run or sweep "
                              "that is still running; wait for it to end (or stop it: Ctrl-C saves its checkpoint), "
                              "then start this one again\n")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    state = checkpoint.load(tmp_path / "my runs" / "b" / "checkpoint.pt")
    assert f"interrupted at step {state['global_step']};" in out
    hint = out.split("continue with: ", 1)[1].splitlines()[0]
    assert shlex.split(hint) == ["python", str(SCRIPT), "--logdir", "my runs/b", "--resume"]  # from tmp_path: whole
    assert "view it with: tensorboard --logdir 'my runs/b'" in out


def test_a_printed_path_that_starts_with_a_dash_is_not_taken_for_an_option():
    """shlex.quote leaves `-d` as it is: `--logdir -d --resume` was refused by argparse, `python -r/scripts/x.py`
    by Python."""
    from torch_tanhnet.training.wording import shell

    assert shell("-d") == "./-d" and shell("-my runs/a") == "'./-my runs/a'" and shell("/abs/-d") == "/abs/-d"
    assert shlex.split(f"--logdir {shell('-d')} --resume") == ["--logdir", "./-d", "--resume"]
