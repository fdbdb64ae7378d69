"""Build, cache and load the one-pass CPU kernels (``csrc/tanhnet_kernels.c``).

The kernels are plain C (no PyTorch headers, so a build takes about a second), compiled
on first use with the system's C compiler (``$CC``, else ``cc``/``gcc``) at ``-O3
-march=native``, once per machine, into a cache folder:
``$TORCH_TANHNET_CACHE``, else ``$XDG_CACHE_HOME/torch_tanhnet``, else
``~/.cache/torch_tanhnet``. They are called through ctypes on tensors' memory.

Each library is written whole (a temporary file, fsynced, renamed onto it) and its sha256 beside it
(``<library>.sha256``, in ``sha256sum`` format). A library is loaded only if it matches: a cached one that
was cut short or damaged (a crash before its data reached the disk, a full disk, a bad copy), or one
without a checksum (caches made before checksums), is built again in its place, as a missing one is.
Processes that start together build once: the others wait on ``<library>.lock`` (flock), then load it.

They need glibc's vector maths library (libmvec with tanh, exp and log1p: glibc ≥ 2.35 on
x86-64). Where no compiler or no libmvec is found, where the cache folder cannot be created or
written, or with ``TORCH_TANHNET_NO_EXTENSION=1``, :func:`kernels` returns None and the package
uses its pure-PyTorch paths, after one warning. A build the compiler refused is not retried with the
same compiler (path and version), flags and C library; a change of any of them gets a new try (a build
that failed for a passing reason, a full disk or a time limit, is tried again by the next process).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..console import say
from ..files import new_file, write_atomic
from ..switches import switch

SOURCE = Path(__file__).parent / "csrc" / "tanhnet_kernels.c"
_lock = threading.Lock()
_cache: dict[str, object] = {}
_warned = False


_lock_files: set[int] = set()  # descriptors of the build lock files this process holds (:func:`_one_builder`)
WAIT_S = 180.0  # the longest wait for another process's build (its compile is cut off at 120 s), then build alone


def _after_fork() -> None:
    """A child forked while another thread built the kernels holding ``_lock`` would wait on it for ever (that
    thread is not in the child): a fresh lock; the child builds, or loads from the cache, on its first call. The
    build lock file's descriptor is closed in the child: an flock belongs to the open file, which the child shares,
    so a child that waited on the lock would hold it itself, for ever."""
    global _lock
    _lock = threading.Lock()
    for fd in list(_lock_files):
        try:
            os.close(fd)
        except OSError:
            pass
    _lock_files.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

P, I64, INT, DBL = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_double
SIGNATURES = {
    "tn_fused_loss": [P, P, P, P, P, P, I64, I64, I64, P, P, P, P, P, P, INT],
    "tn_forward": [P, P, P, P, P, I64, I64, I64, P, P, INT],
    "tn_backward": [P, P, P, P, P, I64, I64, I64, P, P, P, P, P, INT],
    "tn_cost": [P, P, I64, DBL, P, P, INT],
    "tn_ensemble_fused_loss": [P, I64, P, I64, P, P, P, P, I64, I64, I64, I64, P, P, P, P, P, P, I64, INT, INT],
    "tn_ensemble_evaluate": [P, I64, P, I64, P, P, P, P, I64, I64, I64, I64, I64, P, INT],
    "tn_vector_maths": [INT, P, P, I64],
}
# flag sets tried in order. Only vectorised maths are worth having: with glibc's vector tanh, exp
# and log1p (libmvec, glibc >= 2.35) a step at N = 10^6 takes 6 ms on one core; compiled against
# scalar libm the same kernel took 74 ms, slower than PyTorch itself, so there is no scalar build:
# without libmvec the pure-PyTorch paths run. -z defs turns a missing vector function into a
# build error rather than a library that fails to load.
ATTEMPTS = [
    ["-O3", "-march=native", "-mprefer-vector-width=512", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math",
     "-Wl,-z,defs"],
]

# what a compiler's failure says when the cause may pass (a full disk, a quota, a file-size limit): not remembered
# what a compiler says of a failure that may pass: a full disk or quota, ulimit -f, and ulimit -u or a loaded machine
# (cc could not start cc1: "vfork: Resource temporarily unavailable", which was remembered for good)
TRANSIENT = ("No space left on device", "Disk quota exceeded", "File too large", "File size limit exceeded",
             "Resource temporarily unavailable", "Cannot allocate memory")


def cache_dir() -> Path:
    """TORCH_TANHNET_CACHE (``~`` expanded), else torch_tanhnet under XDG_CACHE_HOME, else under ~/.cache. A
    relative XDG_CACHE_HOME is ignored, as the XDG spec says (``'$HOME/.cache'``, quoted, made a folder named
    ``$HOME`` in the working folder)."""
    if os.environ.get("TORCH_TANHNET_CACHE"):
        try:
            return Path(os.environ["TORCH_TANHNET_CACHE"]).expanduser()  # '~/.cache/tt' made a folder named ~ here
        except RuntimeError as e:  # '~nosuchuser/x': "Could not determine home directory", naming no variable
            raise RuntimeError(f"TORCH_TANHNET_CACHE={os.environ['TORCH_TANHNET_CACHE']!r}: {e}") from None
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else _home() / ".cache"
    return base / "torch_tanhnet"


def _home() -> Path:
    """The home folder: HOME where it names one, else the user's from the password database. An empty or
    relative HOME (``HOME=``) made the cache ``.cache/torch_tanhnet`` in the working folder (``/`` for a service)."""
    home = os.environ.get("HOME", "")
    if os.path.isabs(home):
        return Path(home)
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError, AttributeError):
        return Path.home()


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def _machine_key() -> str:
    """What the compiled code depends on: the source, the platform and this CPU's features."""
    h = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(SOURCE.parent.iterdir()) if p.suffix in (".c", ".h")))
    h.update(f"{platform.machine()} {platform.system()} {sys.implementation.cache_tag}".encode())
    try:
        flags = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")]
        h.update(flags[0].encode() if flags else b"")
    except OSError:
        pass
    return h.hexdigest()[:16]


def _toolchain_key(cc: str, flags: list[str]) -> str:
    """What a build's success depends on beyond the machine: the compiler (its path and version), the flags
    and the C library. A failure is remembered under this key, so a changed compiler or glibc gets a new try."""
    path = shutil.which(cc) or cc
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    h = hashlib.sha256(f"{os.path.realpath(path)}\0{version}\0{' '.join(flags)}\0{platform.libc_ver()}".encode())
    return h.hexdigest()[:12]


def _checksum(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _checksum_line(data: bytes, target: Path) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {target.name}\n".encode()  # as sha256sum writes it


def _verified(target: Path) -> bool:
    """Whether ``target`` is there and its bytes match its checksum file.

    Checking the float32 library (79 kB) took 0.10-0.15 ms on the development machine (both files read from
    the page cache, sha256), once per process and precision, as ``kernels`` keeps what it loaded; the
    ``_machine_key`` before it takes 0.4-0.7 ms."""
    try:  # not a regular file (a FIFO: its read waited forever): built again, the build's rename replacing it
        if not (target.is_file() and _checksum(target).is_file()):
            return False
        return _checksum(target).read_bytes() == _checksum_line(target.read_bytes(), target)
    except OSError:  # either file missing or unreadable
        return False


def _build(cc: str, flags: list[str], double: bool, target: Path) -> tuple[str | None, bool]:
    """Compile into a temporary file beside ``target``, fsync it, write its checksum file, then os.replace it
    onto ``target``: concurrent builds cannot tear it, nor a crash leave a library that passes its check and is not
    whole.

    (None, False) on success, else (why it failed, whether the compiler itself refused): only that is worth
    remembering; a cache folder that cannot be written, a full disk or a compile cut off by the time limit may pass.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = new_file(target.parent, f".{target.name}.")  # a new file's permissions: a shared cache reads it
        os.close(fd)
    except OSError as e:
        return f"cannot write the kernel cache {str(target.parent)!r}: {e.strerror or e}", False
    say(f"torch-tanhnet: compiling the fused CPU kernels ({'float64' if double else 'float32'}, once per machine) "
        f"into {target.parent}")
    cmd = [cc, *flags, *(["-DTN_DOUBLE"] if double else []), "-shared", "-fPIC", "-o", tmp, str(SOURCE),
           "-lmvec", "-lm", "-lpthread"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            lines = r.stderr.strip().splitlines()
            # the first error names the cause; the last line is often the linker's summary (collect2: error: ld ...)
            why = next((x for x in lines if "error" in x.lower()), lines[-1] if lines else _silent_failure(cc, r))
            # a compiler killed by a signal (SIGXFSZ under ulimit -f, the OOM killer), or a disk that filled up,
            # may pass next time: remembered only when the compiler itself refused
            passing = r.returncode < 0 or any(s in r.stderr for s in TRANSIENT)
            return why, not passing
        with open(tmp, "rb") as f:
            data = f.read()
            os.fsync(f.fileno())
        # the library's bytes reach the disk (fsync above) before its checksum is written, and the checksum
        # before the library is renamed into place. A crash between the two leaves the new checksum beside the
        # old library (or none): a mismatch, so a rebuild, never a pair that passes and is not whole. Concurrent
        # builds write the same bytes (the compiler's output does not depend on the temporary name); were they
        # to differ, the worst is a mismatch and one more build.
        write_atomic(_checksum(target), _checksum_line(data, target))
        os.replace(tmp, target)
        return None, False
    except (OSError, subprocess.SubprocessError) as e:
        return str(e), False
    finally:
        Path(tmp).unlink(missing_ok=True)


def _silent_failure(cc: str, r: subprocess.CompletedProcess) -> str:
    """Why a compiler that printed nothing failed: its exit status, or the signal that ended it (``CC`` set to a
    wrapper that fails quietly read as "failed", no reason shown)."""
    if r.returncode < 0:
        try:
            name = signal.Signals(-r.returncode).name
        except ValueError:
            name = f"signal {-r.returncode}"
        return f"{cc} was killed by {name}"
    return f"{cc} exited with status {r.returncode} and printed nothing"


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    for name, argtypes in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return lib


def _warn_once(why: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"torch-tanhnet: the fused CPU kernels are unavailable ({why}); "
                      "using the pure-PyTorch paths: the same equations, more slowly, with results equal to rounding "
                      "(which a run that does not converge amplifies)",
                      RuntimeWarning, stacklevel=3)


def disabled() -> bool:
    """Whether ``TORCH_TANHNET_NO_EXTENSION`` turns the compiled kernels off (C on the CPU, Triton on CUDA)."""
    return switch("TORCH_TANHNET_NO_EXTENSION")


def kernels(precision: str) -> ctypes.CDLL | None:
    """The kernels for ``"float32"`` or ``"float64"``, built on first use; None where unavailable."""
    if precision in _cache:
        return _cache[precision]
    with _lock:
        if precision in _cache:
            return _cache[precision]
        lib, why = None, None
        if disabled():
            why = "TORCH_TANHNET_NO_EXTENSION is set"
        elif (cc := _compiler()) is None:
            why = "no C compiler found; set CC"
        else:
            try:
                lib, why = _build_or_load(cc, precision)
            except (OSError, RuntimeError, KeyError) as e:  # an unusable cache folder or home directory
                lib, why = None, f"the kernel cache is unusable: {e}"
        if lib is None:
            _warn_once(why)
        _cache[precision] = lib
        return lib


@contextmanager
def _one_builder(target: Path):
    """Hold an flock on ``<target>.lock`` while ``target`` is checked and built: other processes (torchrun's,
    pytest-xdist's workers, two notebooks) wait for the one build and load it, instead of each compiling its own
    (three processes started together compiled three times, on a machine of two cores). A process killed while
    building lets go with its file descriptors; one that neither ends nor finishes (stopped with Ctrl-Z) is waited
    for at most WAIT_S, then each builds as before. Where no lock can be had (a read-only cache, a file system
    without locks), everyone goes on as before too: each build is whole anyway."""
    try:
        import fcntl

        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target.with_name(target.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except (ImportError, OSError):
        yield
        return
    _lock_files.add(fd)
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # another process builds
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            except OSError:  # ENOLCK (NFS without locks): build as if alone
                break
        yield
    finally:
        if fd in _lock_files:  # not closed by a fork's child handler (this is the parent, or no fork happened)
            _lock_files.discard(fd)
            os.close(fd)


def _build_checked(cc: str, flags: list[str], precision: str, target: Path) -> str | None:
    """Build ``target`` unless another process has meanwhile (waited for under :func:`_one_builder`); None when
    it is there and matches its checksum, else why not."""
    with _one_builder(target):
        if _verified(target):  # another process built it while this one waited
            return None
        # a build the compiler refused here is not retried with the same compiler, flags and C library
        failed = target.with_name(f"{target.stem}.{_toolchain_key(cc, flags)}.failed")
        if failed.is_file():
            return failed.read_text(errors="replace").strip() or "build failed"
        if target.exists():
            say(f"torch-tanhnet: {target} does not match its checksum (or has none); building it again")
        why, lasting = _build(cc, flags, precision == "float64", target)
        if why is not None:
            if lasting:
                try:
                    failed.write_text(why + "\n")
                except OSError:  # an unwritable cache: nothing to remember the failure in
                    pass
            return why
        if not _verified(target):  # replaced meanwhile by something else; never loaded unchecked
            return f"{target} does not match its checksum after a build"
        return None


def _build_or_load(cc: str, precision: str) -> tuple[ctypes.CDLL | None, str | None]:
    """The cached library for ``precision``, built first if missing or not matching its checksum (loading a
    damaged one can kill the process with SIGBUS); else None and why."""
    why = None
    for level, flags in enumerate(ATTEMPTS):
        target = cache_dir() / f"tanhnet_{precision}_{_machine_key()}_{level}.so"
        if not _verified(target):
            why = _build_checked(cc, flags, precision, target)
            if why is not None:
                continue
        try:
            return _load(target), None
        except (OSError, AttributeError) as e:  # not a library ("file too short"), or one without the kernels: a
            # compiler that made something else. Its checksum removed, the next run builds it again rather than
            # failing on it each time
            why = f"{target} cannot be loaded or does not hold the kernels ({e})"
            try:
                _checksum(target).unlink(missing_ok=True)
            except OSError:
                pass
    return None, why


def available() -> bool:
    return kernels("float32") is not None
