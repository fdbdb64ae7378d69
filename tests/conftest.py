import importlib.util
import os
import runpy
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

# The tests start about a hundred Python processes (the scripts as a user runs them). Where the environment says not
# to write bytecode (PYTHONDONTWRITEBYTECODE=1, as some containers and CI images set), each compiled the package anew,
# ~0.4 s a process; they may keep it (in __pycache__, which git ignores).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGXCPU)


@pytest.fixture(autouse=True)
def _signal_handlers_as_they_were():
    """A script run as __main__ in this process ignores Ctrl-C, SIGTERM and SIGHUP once its work is over: left so, the
    next test's subprocess began with them ignored and kept them so (as nohup's SIGHUP is kept), and a burst of
    SIGHUPs never stopped it (a CI run hung 60 s). Each test leaves the handlers as it found them."""
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    yield
    for sig, handler in before.items():
        if handler is not None and signal.getsignal(sig) != handler:
            signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def _warnings_shown_as_they_were():
    """A script's main() called in this process shows warnings in the script's own form from then on
    (console.warnings_as_lines); each test leaves Python's form as it found it."""
    before = warnings.formatwarning
    yield
    warnings.formatwarning = before


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test(monkeypatch):
    """A script a test started and did not see end (an assertion failed first) is killed with the test: a failed
    Ctrl-C test once left two train.py runs of 10^6 epochs holding both cores through the next CI run (452 s)."""
    started = []
    original = subprocess.Popen.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(subprocess.Popen, "__init__", init)
    yield
    for proc in started:
        if proc.poll() is not None:
            continue
        group = os.getpgid(proc.pid) == proc.pid  # its own session (start_new_session): its group goes with it
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 30)):  # SIGTERM first: torchrun then stops its
            try:  # workers, which run in sessions of their own that no signal to torchrun's group reaches
                os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
                proc.wait(timeout=wait)
                break
            except (ProcessLookupError, PermissionError):
                break
            except subprocess.TimeoutExpired:
                continue


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
        params = ["cpu", pytest.param("cuda", marks=cuda)]
        metafunc.parametrize("device", params)


def make_params(D: int, H: int, *, dtype=torch.float64, device="cpu", seed: int = 0, requires_grad: bool = True):
    """Random, non-trivial (X-independent) parameters U (H, D), b (H,), W (1, H), c (1,)."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(H, D), (H,), (1, H), (1,)]
    return [
        torch.randn(s, generator=g, dtype=torch.float64).to(device=device, dtype=dtype).requires_grad_(requires_grad)
        for s in shapes
    ]


def make_data(N: int, D: int, *, dtype=torch.float64, device="cpu", seed: int = 1, requires_grad: bool = False):
    """Random X (N, D) and soft labels y (N, 1) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, D, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    y = torch.rand(N, 1, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return X.requires_grad_(requires_grad), y


def loss_with(model, params: dict, X, y):
    """``model.loss(X, y)`` with ``params`` (name -> tensor) in place of its parameters, through
    ``torch.func.functional_call``: the training path under torch.func's transforms and dual numbers."""
    return torch.func.functional_call(_LossForward(model), {f"model.{k}": v for k, v in params.items()}, (X, y))


class _LossForward(torch.nn.Module):
    """``model.loss`` as a forward, so that functional_call can swap the parameters in."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, X, y):
        return self.model.loss(X, y)


def load_script(name: str):
    """scripts/<name>.py as a fresh module, for calling its main in this process (a subprocess costs ~2 s of
    imports); its ``__main__`` part does not run."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_as_main(name: str, argv: list[str], *, stdout, stderr, at_exit=None) -> int:
    """``python scripts/<name>.py ARGV`` in this process, its ``__main__`` part too (the Output over stdout, the
    signal handlers, the exit code), with ``stdout`` and ``stderr`` the process's streams (None: closed, as Python
    leaves them after ``>&-``); the exit code. ``at_exit()``, if given, runs as the script's end leaves the process,
    as an atexit function of its interpreter would. What a script changes of its process is put back: sys.argv,
    sys.path (scripts/ first, as ``python scripts/x.py`` starts: sweep.py imports train.py beside it), the streams,
    sys.unraisablehook and the stop signals' handlers."""
    script = SCRIPTS / f"{name}.py"
    saved = sys.argv, list(sys.path), sys.stdout, sys.stderr, sys.unraisablehook
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    sys.argv, sys.stdout, sys.stderr = [str(script), *argv], stdout, stderr
    sys.path.insert(0, str(SCRIPTS))
    try:
        runpy.run_path(str(script), run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        if at_exit is not None:
            at_exit()
        sys.argv, sys.path[:], sys.stdout, sys.stderr, sys.unraisablehook = saved
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if isinstance(code, str):  # sys.exit("message"): Python writes it to stderr and exits 1
        if stderr is not None:
            stderr.write(code + "\n")
        return 1
    return code or 0


@pytest.fixture
def full_disk(tmp_path):
    """A real file system of 64 kB (tmpfs), to be filled: a folder, unmounted after the test; skipped without root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs to fill a real disk")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)
