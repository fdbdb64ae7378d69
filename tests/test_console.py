"""What the scripts say. Every line they write to stderr goes out in one write: under torchrun the processes share
one stderr, and with Python's stderr unbuffered (PYTHONUNBUFFERED=1, as CI and many containers set) ``print``'s two
writes, the text and its newline, interleaved two processes' errors into one line. And a stdout lost (its reader
gone, its disk full) costs the output, never the work."""

import io
import os
import subprocess
import sys
import warnings

import pytest
from conftest import SCRIPTS, load_script, run_as_main

from torch_tanhnet.console import say


class Writes:
    """A stderr that keeps each write apart."""

    def __init__(self):
        self.writes = []

    def write(self, text):
        self.writes.append(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def test_say_writes_the_line_and_its_newline_at_once(monkeypatch):
    stream = Writes()
    monkeypatch.setattr(sys, "stderr", stream)
    say("train.py: error: argument --lr: must be a positive number, got -1.0")
    assert stream.writes == ["train.py: error: argument --lr: must be a positive number, got -1.0\n"]


def test_a_file_names_bytes_that_are_not_utf8_read_as_a_shell_writes_them(tmp_path, monkeypatch):
    """Python keeps such bytes as lone surrogates, which an encoder writes as '\\udce9': the lines naming a sweep's
    folder (`logs: sw\\udce9`) did, while the command printed beside them gave $'sw\\xe9'."""
    import warnings

    from torch_tanhnet.console import Output, warnings_as_lines

    name = os.fsdecode(b"sw\xe9\xff")
    stream = Writes()
    monkeypatch.setattr(sys, "stderr", stream)
    say(f"logs: {name}")
    out = Output(Writes(), "sweep.py")
    out.write(f"results: {name}/results.csv\n")
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    warnings_as_lines("sweep.py")
    line = warnings.formatwarning(RuntimeWarning(f"cannot write {name}"), RuntimeWarning, "f.py", 1)
    assert stream.writes == ["logs: sw\\xe9\\xff\n"]
    assert out._stream.writes == ["results: sw\\xe9\\xff/results.csv\n"]
    assert line == "sweep.py: warning: cannot write sw\\xe9\\xff\n"
    say(f"data file {name!r} does not exist")  # a quoted name: repr() escapes the bytes as the text \\udce9
    assert stream.writes[-1] == "data file 'sw\\xe9\\xff' does not exist\n"
    text = "ε ≥ × \\u00e9 ü"  # anything else as it was
    say(text)
    assert stream.writes[-1] == text + "\n"


def test_a_warning_of_several_lines_is_one(monkeypatch):
    """tqdm's warning of a monitor thread that could not start (under ulimit -v) spans two lines, 'due to:' then the
    error: one line, as every warning the scripts print."""
    import warnings

    from torch_tanhnet.console import warnings_as_lines

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    warnings_as_lines("train.py")
    text = "tqdm:disabling monitor support (monitor_interval = 0) due to:\ncan't start new thread"
    assert warnings.formatwarning(UserWarning(text), UserWarning, "f.py", 1) == (
        "train.py: warning: tqdm:disabling monitor support (monitor_interval = 0) due to: can't start new thread\n")


def nothing_here(p):
    return ["--logdir", str(p / "nothing-here"), "--resume"]


def bad_csv(p):
    (p / "d.csv").write_text("1,2,0\n1,2,3\n")
    return ["--data", str(p / "d.csv")]


# each kind of failure a script reports: argparse's, a setting's, a data file's, a checkpoint's
CASES = [
    ("train", lambda p: ["--dataset", "blobs"]),
    ("train", lambda p: ["--lr", "-1"]),
    ("train", bad_csv),
    ("train", nothing_here),
    ("sweep", lambda p: ["--lr", "0.5", "-1"]),
    ("sweep", lambda p: ["--random", "3", "--lr", "1:0.1"]),
    ("sweep", bad_csv),
    ("sweep", nothing_here),
    ("bench", lambda p: ["--sizes", "0"]),
    ("check_gradients", lambda p: ["--n", "0"]),
]


@pytest.mark.parametrize("name, make_args", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_each_line_a_script_writes_to_stderr_is_one_write(tmp_path, monkeypatch, name, make_args):
    module = load_script(name)
    monkeypatch.chdir(tmp_path)
    stream = Writes()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        code = module.main(make_args(tmp_path))
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2, stream.writes
    assert stream.writes and all(w.endswith("\n") for w in stream.writes), stream.writes
    assert ": error: " in stream.writes[-1]


class Unwritable(Writes):
    def write(self, text):
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("stderr", [None, Unwritable()], ids=["closed", "full disk"])
@pytest.mark.parametrize("name, make_args", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_a_stderr_that_cannot_be_written_loses_the_line_not_the_exit_code(tmp_path, monkeypatch, name, make_args,
                                                                         stderr):
    # 2>&- or 2>/dev/full: the error line is lost, but the exit code still tells a bad input (2) from a crash (1)
    module = load_script(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stderr", stderr)
    try:
        code = module.main(make_args(tmp_path))
    except SystemExit as e:  # argparse's own errors (argparse, too, passes over a stderr it cannot write)
        code = e.code
    assert code == 2


def sweep_results(p):
    import csv

    with open(p / "out" / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def bench_json(p):
    import json

    assert {row["case"] for row in json.loads((p / "b.json").read_text())["results"]} >= {"fused", "eager"}


def train_checkpoint(p):
    from torch_tanhnet.training import checkpoint

    assert checkpoint.load(p / "run" / "checkpoint.pt")["global_step"] == 3


# each script, and what its work keeps
GONE = [
    ("train", ["--epochs", "3", "--logdir", "run", "--no-progress"], train_checkpoint),
    ("sweep", ["--seeds", "2", "--epochs", "3", "--n-samples", "20", "--gallery", "0", "--logdir", "out"],
     sweep_results),
    ("bench", ["--sizes", "64", "--rounds", "1", "--min-time", "0.001", "--no-compile", "--no-jax", "--no-memory",
               "--json", "b.json"], bench_json),
    ("check_gradients", ["--n", "4"], lambda p: None),
]


# Each stream a script may meet, in a real process once (Python itself sets the streams up: None for a closed one,
# the encoding PYTHONIOENCODING names, SIGPIPE ignored), and for each script in this process through its own
# __main__ part (conftest.run_as_main): a Python process costs 2-6 s of imports, and the handling is console.Output
# and each script's wiring of it, which run the same in either. check_gradients.py's reader gone is a real process:
# its imports are the ones that could set SIGPIPE back to its default.
# (A closed stdout's real process: bench.py's under python -I; a narrow one's: check_gradients.py's under
# PYTHONWARNINGS=error; both below.)
IN_A_PROCESS = {("check_gradients", "reader gone"), ("train", "full disk"),  # the lost stdouts
                ("train", "stderr closed"), ("train", "--help")}  # a closed stderr, help lost

LOST = [(*g, stdout) for g in GONE for stdout in ("reader gone", "full disk")]


def where(name: str, case: str) -> str:
    return "process" if (name, case) in IN_A_PROCESS else "this process"


def unbuffered(fd: int) -> io.TextIOWrapper:
    """A stdout on ``fd`` as Python makes it under PYTHONUNBUFFERED=1 or -u (as CI sets): each write goes out."""
    return io.TextIOWrapper(io.FileIO(fd, "w"), encoding="utf-8", write_through=True)


def lost_stdout(kind: str) -> int:
    """A file descriptor whose writes fail: a pipe whose reader has gone, or the full disk /dev/full."""
    if kind == "full disk":
        return os.open("/dev/full", os.O_WRONLY)
    read, write = os.pipe()
    os.close(read)  # before anything was written
    return write


@pytest.mark.parametrize("name, args, kept, stdout", LOST, ids=[f"{g[0]}-{g[3]}-{where(g[0], g[3])}" for g in LOST])
def test_a_stdout_lost_before_anything_was_said_stops_no_work(tmp_path, monkeypatch, name, args, kept, stdout):
    """`script.py ... | head -1` where the reader went away before the script said anything (with stdout
    unbuffered, the plan's text and its newline are two writes): the sweep once stopped before it trained, a
    benchmark did not write its --json file, check_gradients.py ended in a traceback. A stdout sent to a full disk
    (/dev/full) the same, and the sweep even blamed its own folder and removed it. Now the work is done and kept;
    a reader gone ends it as a cut pipe does (141, no error said: a benchmark's progress is), a full disk with one
    line saying what was lost, exit 1."""
    if stdout == "full disk" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    if where(name, stdout) == "process":
        fd = lost_stdout(stdout)
        proc = subprocess.Popen([sys.executable, str(SCRIPTS / f"{name}.py"), *args], cwd=tmp_path, stdout=fd,
                                stderr=subprocess.PIPE, text=True)
        os.close(fd)
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    else:
        monkeypatch.chdir(tmp_path)
        out, said = unbuffered(lost_stdout(stdout)), io.StringIO()
        code = run_as_main(name, args, stdout=out, stderr=said)
        out.close()
        err = said.getvalue()
    assert "Traceback" not in err, err
    if stdout == "reader gone":
        assert code == 141 and "error" not in err, err
    else:
        assert code == 1 and err.splitlines()[-1] == (
            f"{name}.py: error: cannot write to stdout (No space left on device); what was to be printed from then "
            "on is lost, the work itself went on"), err
    kept(tmp_path)


STREAMS = [(*g, stream) for g in GONE[:2] for stream in ("stdout closed", "stdout in ASCII", "stderr closed")]


@pytest.mark.parametrize("name, args, kept, stream", STREAMS,
                         ids=[f"{g[0]}-{g[3]}-{where(g[0], g[3])}" for g in STREAMS])
def test_a_closed_or_narrow_stream_stops_no_work(tmp_path, monkeypatch, name, args, kept, stream):
    """`>&-` left sys.stdout None and every script crashed on its first line (the sweep before it trained);
    PYTHONIOENCODING=ascii met the ε, × and ≥ they print with a UnicodeEncodeError (the sweep's in its plan);
    `2>&-` stopped the progress bar's run before training, silently, exit 1. All three now do the work."""
    args = [a for a in args if a != "--no-progress"]  # the progress bar is what met a closed stderr
    if where(name, stream) == "process":
        env = {**os.environ, "PYTHONIOENCODING": "ascii"} if stream == "stdout in ASCII" else None
        closed = 1 if stream == "stdout closed" else 2 if stream == "stderr closed" else None
        r = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), *args], cwd=tmp_path, capture_output=True,
                           text=True, env=env, timeout=120, preexec_fn=(lambda: os.close(closed)) if closed else None)
        code, out, err = r.returncode, r.stdout, r.stderr
    else:
        monkeypatch.chdir(tmp_path)
        ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", write_through=True)  # strict, as Python's
        stdout = None if stream == "stdout closed" else ascii_out if stream == "stdout in ASCII" else io.StringIO()
        stderr = None if stream == "stderr closed" else io.StringIO()
        code = run_as_main(name, args, stdout=stdout, stderr=stderr)
        out = ascii_out.buffer.getvalue().decode("ascii") if stdout is ascii_out else ""
        err = stderr.getvalue() if stderr is not None else ""
    assert code == 0, err
    assert "Traceback" not in err and "error" not in err, err
    if stream == "stdout in ASCII":
        assert out.isascii() and ("\\u03b5" in out or "\\xd7" in out), out  # ε, ×
    kept(tmp_path)


@pytest.mark.parametrize("name, args, kept", GONE[1:3], ids=["sweep", "bench-stdout closed"])
def test_a_warning_is_the_scripts_own_line_even_under_python_isolated(tmp_path, name, args, kept):
    """Without the fused kernels (a cache folder under a file), sweep.py and bench.py showed Python's two-line
    warning (the package's file and source line); train.py alone set its own form (check_gradients.py too now,
    though its audit does not use the kernels). And sweep.py under `python -I` (or -P) could not import train.py
    beside it: a traceback. Real processes: the kernels load once a process, and -I is an interpreter's flag; and
    bench.py's runs with its stdout closed (`>&-`), as a real process starts with it (see above)."""
    (tmp_path / "a-file").write_text("")
    env = {**os.environ, "TORCH_TANHNET_CACHE": str(tmp_path / "a-file" / "cache")}
    r = subprocess.run([sys.executable, "-I", str(SCRIPTS / f"{name}.py"), *args], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120,
                       preexec_fn=(lambda: os.close(1)) if name == "bench" else None)
    assert r.returncode == 0, r.stderr
    warned = [x for x in r.stderr.splitlines() if "kernels are unavailable" in x]
    assert len(warned) == 1 and warned[0].startswith(f"{name}.py: warning: torch-tanhnet: the fused CPU kernels"), \
        r.stderr
    assert "Traceback" not in r.stderr and ".py:" not in r.stderr.replace(f"{name}.py:", ""), r.stderr
    kept(tmp_path)


HELP = ["train", "sweep", "bench", "check_gradients"]


@pytest.mark.parametrize("name", HELP, ids=[f"{n}-{where(n, '--help')}" for n in HELP])
def test_help_that_cannot_be_written_says_so(tmp_path, monkeypatch, name):
    """argparse's exit after --help went past the stdout's check: `--help > /dev/full` lost the help and exited 0."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    if where(name, "--help") == "process":
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), "--help"], cwd=tmp_path, stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=120)
        code, err = r.returncode, r.stderr
    else:
        monkeypatch.chdir(tmp_path)
        out, said = unbuffered(lost_stdout("full disk")), io.StringIO()
        code = run_as_main(name, ["--help"], stdout=out, stderr=said)
        out.close()
        err = said.getvalue()
    assert code == 1 and err.startswith(f"{name}.py: error: cannot write to stdout (No space left on device)"), err


def test_a_huge_loss_prints_in_exponent_form_and_others_as_before():
    """--lr 1e30 printed its losses as 31-digit fixed-point numbers, and a sweep's table rows 200 characters wide."""
    from torch_tanhnet.console import figure

    assert [figure(v, 4) for v in (0.12345, 999999.5, 4.217e29, -3e7)] == ["0.1235", "999999.5000", "4.2170e+29",
                                                                           "-3.0000e+07"]
    assert [figure(v, 3) for v in (float("nan"), float("inf"), 0.0)] == ["nan", "inf", "0.000"]


@pytest.mark.parametrize("name", ["train.py", "sweep.py", "bench.py", "check_gradients.py"])
def test_a_script_run_before_the_install_says_so_in_one_line(tmp_path, name):
    """`python scripts/train.py` in a fresh clone, before README's `pip install`: Python's three-line traceback
    ending in ModuleNotFoundError; one line now, naming the step. (-S: no site-packages, so nothing installed.)"""
    r = subprocess.run([sys.executable, "-S", str(SCRIPTS / name), "--help"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == (f"{name}: error: No module named 'torch_tanhnet': install the project first, as README.md "
                        "says (pip install -e . in its folder)\n")


@pytest.mark.parametrize("name", ["train.py", "sweep.py", "bench.py", "check_gradients.py"])
def test_a_script_run_in_a_removed_folder_says_so_in_one_line(tmp_path, name):
    """`rmdir` of the shell's own folder, then a script: torch's import failed in oneMKL ("Cannot load
    libtorch_cpu.so", exit 2), nothing naming the folder, even with an absolute --logdir."""
    gone = tmp_path / "gone"
    gone.mkdir()
    r = subprocess.run([sys.executable, str(SCRIPTS / name), "--help"], cwd=gone, capture_output=True, text=True,
                       timeout=60, preexec_fn=lambda: os.rmdir(gone))
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == (f"{name}: error: the current folder no longer exists (removed while the shell was in it): cd "
                        "to one that does, and run it again\n")


@pytest.mark.parametrize("name, args, env, code, line", [
    # torch's first jvp warned of its own torch.jit.script; and the ε, Ḡ, ⊙ of its tables on a stdout in ASCII
    ("check_gradients", ["--n", "3"], {"PYTHONIOENCODING": "ascii"}, 0, None),
    ("bench", ["--sizes", "64", "--rounds", "1", "--min-time", "0.001", "--no-compile", "--no-jax", "--no-memory"], {},
     0, None),  # torch.compile, called though --no-compile, imported inductor and its deprecation
    ("train", ["--n-samples", "5", "--dry-run", "--epochs", "2", "--no-progress"], {}, 1,
     "train.py: error: every label of the test set is "),
    ("train", ["--dry-run", "--epochs", "2", "--no-progress"], {"TORCH_TANHNET_REFERENCE": "maybe"}, 1,
     "train.py: error: TORCH_TANHNET_REFERENCE='maybe' is neither on"),
], ids=["check_gradients-process", "bench-process", "train-labels-this process", "train-environment-this process"])
def test_a_warning_made_an_error_by_pythonwarnings_is_one_line(tmp_path, monkeypatch, name, args, env, code, line):
    """PYTHONWARNINGS=error (or -W error, as CI jobs set it): the scripts ended in a traceback, check_gradients.py
    at every run (torch's own DeprecationWarning, raised in its first forward-mode call). Torch's warnings come once
    a process, in a fresh one; the package's own warnings are raised here, in this process, as -W error raises them."""
    if name != "train":
        r = subprocess.run([sys.executable, str(SCRIPTS / f"{name}.py"), *args], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "error", **env})
        got, err = r.returncode, r.stderr
        if env.get("PYTHONIOENCODING") == "ascii":  # a narrow stdout, as a real process starts with it
            assert r.stdout.isascii() and "\\u03b5" in r.stdout and "\\u2299" in r.stdout, r.stdout  # ε, ⊙
    else:
        from torch_tanhnet.kernels import dispatch

        monkeypatch.chdir(tmp_path)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(dispatch, "_default", [])  # as in a process that has not read the environment yet
        said = io.StringIO()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = run_as_main(name, args, stdout=io.StringIO(), stderr=said)
        err = said.getvalue()
    assert got == code and "Traceback" not in err, err
    if line:
        (said,) = err.splitlines()
        assert said.startswith(line) and said.endswith(" (a warning, raised as an error by -W error or PYTHONWARNINGS)")


@pytest.mark.parametrize("name, argv, line", [
    ("sweep", ["--lr", "0.1", "--lr", "0.5"], "argument --lr: given twice, and only the last would count; give all "
     "its values after one --lr (--lr A B ...)"),
    ("sweep", ["--seeds", "2", "--seeds=3"], "argument --seeds: given twice, and only the last would count; give all "
     "its values after one --seeds (--seeds A B ...)"),
    ("train", ["--logdir", "a", "--lr", "0.1", "--logdir=b"], "argument --logdir: given twice, and only the last "
     "would count; give it once"),
    ("bench", ["--sizes", "64", "--sizes", "128"], "argument --sizes: given twice, and only the last would count; "
     "give all its values after one --sizes (--sizes A B ...)"),
    ("check_gradients", ["--n", "3", "--n", "4"], "argument --n: given twice, and only the last would count; give it "
     "once"),
])
def test_a_flag_given_twice_is_refused_not_cut_to_its_last(tmp_path, monkeypatch, capsys, name, argv, line):
    """argparse keeps a repeated flag's last value: `sweep.py --lr 0.1 --lr 0.5` swept one rate of the two meant,
    `train.py --logdir a --logdir b` wrote to b, silently. (A switch given twice, --dry-run --dry-run, is the same
    switch: taken.)"""
    monkeypatch.chdir(tmp_path)
    try:
        code = load_script(name).main(argv)
    except SystemExit as e:
        code = e.code
    assert (code, capsys.readouterr().err) == (2, f"{name}.py: error: {line}\n")
    assert not list(tmp_path.iterdir())  # refused before anything was made
