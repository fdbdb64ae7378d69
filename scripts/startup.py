"""A script's first import of torch_tanhnet, and so of torch, with what can go wrong there said in one line.

Each script's ``__main__`` imports the package and the parts of it that its work needs here first (with
console.Output, which guards stdout). Failures there are not the script's and got a traceback through
torch's or TensorBoard's own modules:
- the package is not installed (a fresh clone, run before README's install step);
- the current folder removed (torch's import then fails in oneMKL, naming a library);
- memory: under an address-space limit (``ulimit -v``) or on a machine with none left, an import ends in
  MemoryError, or in an ImportError, SystemError or TypeError of a library that could not map or allocate.
  Lower limits still end inside C libraries (OpenBLAS, the dynamic loader) with their own messages, before
  Python can say anything.
This module imports no torch: it reads the limit itself (torch_tanhnet.training.setup does so for a run).
"""

from __future__ import annotations

import importlib
import os
import sys

try:  # now: once torch has failed for memory, even this small C module may not load
    import resource
except ImportError:  # not on Windows
    resource = None

INSTALL = "install the project first, as README.md says (pip install -e . in its folder)"
# an import that failed with less address space than this left under the limit failed for want of it
NEAR_LIMIT = 128 * 2**20
MEMORY_WORDS = ("out of memory", "bad_alloc", "failed to map", "cannot allocate", "cannot map")


def load_output(prog: str, *modules: str) -> type:
    """torch_tanhnet.console.Output once it and ``modules`` are imported; or the process ends with one line."""
    try:
        os.getcwd()
    except FileNotFoundError:  # torch's import then failed in oneMKL ("Cannot load libtorch_cpu.so"), exit 2
        sys.exit(f"{prog}: error: the current folder no longer exists (removed while the shell was in it): cd to "
                 "one that does, and run it again")
    try:
        from torch_tanhnet.console import Output

        for module in modules:
            importlib.import_module(module)
    except ModuleNotFoundError as e:  # torch_tanhnet, or torch or TensorBoard, which its install brings
        sys.exit(f"{prog}: error: {e}: {INSTALL}")
    except Exception as e:
        if (why := memory_failure(e)) is None:
            raise
        end(prog, why)
    return Output


def memory_failure(e: BaseException, limit: int | None = None, peak: int | None = None) -> str | None:
    """Why an import failed, in words, if for memory, else None: a MemoryError or an error that says so, or any
    error with the address-space limit (``limit`` bytes, by default this process's) almost reached (``peak``:
    the most this process has mapped, by default from /proc/self/status)."""
    limit = address_space_limit() if limit is None else limit
    first = (str(e).strip().splitlines() or [""])[0][:160]
    what = f"{type(e).__name__}: {first}" if first else type(e).__name__
    said = isinstance(e, MemoryError) or any(word in first.lower() for word in MEMORY_WORDS)
    if limit:
        peak = mapped_peak() if peak is None else peak
        if said or peak is None or limit - peak < NEAR_LIMIT:
            return (f"cannot load torch within this process's address-space limit of {limit / 1e6:.0f} MB "
                    f"(ulimit -v {limit // 1024}): {what}; raise the limit (torch and TensorBoard map about 700 MB "
                    "with torch's CPU build, more with a CUDA build)")
        return None
    if said:
        return f"out of memory while loading torch ({what}); free some memory and run it again"
    return None


def address_space_limit() -> int | None:
    """This process's address-space limit in bytes (``ulimit -v``), None without one."""
    if resource is None:
        return None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def mapped_peak() -> int | None:
    """The most address space this process has mapped so far, in bytes (Linux), else None."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmPeak:"))
    except (OSError, ValueError, StopIteration, MemoryError):
        return None


def end(prog: str, why: str) -> None:
    """Say ``why`` and exit 1 at once: torch is half imported, and its teardown could fail (with a traceback)."""
    sys.stderr.write(f"{prog}: error: {why}\n")
    sys.stderr.flush()
    os._exit(1)
