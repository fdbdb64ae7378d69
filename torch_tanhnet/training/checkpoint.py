"""Checkpoints written atomically: a killed process leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..checks import short
from ..files import replacing
from .signals import deferred_signals
from .wording import Worded, entry, project_script, setting, shell

FORMAT = "torch-tanhnet/checkpoint/1"


class CheckpointError(Worded, ValueError):
    """A checkpoint that cannot be read or does not fit the run; one line for the user."""


class SaveError(Worded, RuntimeError):
    """The run's folder could not be written (a full disk, say); the previous checkpoint is whole. One line (settings
    named as :class:`.wording.Worded` errors name them)."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    """torch.save into a temporary file beside ``path``, fsync, then os.replace onto it.

    Ctrl-C and SIGTERM wait until the file is whole (:func:`~.signals.deferred_signals`). An OSError
    (a full disk, say) leaves the previous file as it was and no temporary file behind.
    """
    path = Path(path)
    with deferred_signals():
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as f:
            try:
                torch.save({"format": FORMAT, **state}, f)
            except RuntimeError as e:  # torch's zip writer reports a failed write (a full disk) so
                if (error := write_failure(e, path.parent)) is None:
                    raise
                raise error from None
        _fsync_dir(path.parent)


WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed", "unexpected pos")


def write_failure(e: RuntimeError, folder: Path) -> OSError | None:
    """torch.save's RuntimeError for a write that failed (``[enforce fail at inline_container.cc:…] unexpected pos
    …`` when the disk fills) as the OSError it stands for: ENOSPC when ``folder``'s file system is (nearly) full,
    else EIO naming torch's words; None for any other RuntimeError."""
    text = str(e)
    if not any(mark in text for mark in WRITE_FAILURES):
        return None
    try:
        full = shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    first = (text.strip().splitlines() or [""])[0].split("] ", 1)[-1].strip(" .")
    return OSError(errno.EIO, f"the write failed ({first[:120]})")


def load_failure(e: BaseException) -> str:
    """What a failed load (``load_state_dict`` and the like) says, in one line: torch's load_state_dict says it on
    the line after its header "Error(s) in loading state_dict for ...:"."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    return lines[1] if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def remove_stale_temporaries(path: str | Path) -> None:
    """Delete temporary files that a process killed inside :func:`save_atomic` left beside ``path``."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


# what a checkpoint holds, and the type of each part
FIELDS = {"model": dict, "optimizer": dict, "global_step": int, "epoch": int, "batch": int, "rng": dict,
          "config": dict, "data_fingerprint": str, "metrics": dict}


def check(state: dict[str, Any], path: str | Path) -> None:
    """Raise CheckpointError unless ``state`` (from :func:`load`) has every part a resumed run reads, each of the
    right kind: a hand-edited or foreign checkpoint is refused in one line, not met by a KeyError later."""
    if str(state.get("kind", "")).startswith("torch-tanhnet/sweep/"):  # sweep/state.py's: a whole sweep, not a run
        raise CheckpointError(f"checkpoint {str(path)!r} is a sweep's, not a run's; {sweep_hint(Path(path).parent)}")
    for key, kind in FIELDS.items():
        if key not in state:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks its {key!r} (hand-edited?); it cannot be resumed")
        value = state[key]
        if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or value < 0)):
            raise CheckpointError(f"checkpoint {str(path)!r} holds {type(value).__name__} {short(value)} as its "
                                  f"{key!r}, not a{'n' if kind is int else ''} {kind.__name__}"
                                  f"{' ≥ 0' if kind is int else ''} (hand-edited?); it cannot be resumed")
    if not isinstance(state["rng"].get("torch"), torch.Tensor):
        raise CheckpointError(f"checkpoint {str(path)!r} lacks its random state (hand-edited?); it cannot be resumed")



def _numpy_numbers() -> list:
    """What pickle needs to rebuild a NumPy number (np.float64(0.5), np.int64(3), np.bool_) or string (np.str_: an
    older TrainConfig kept dataset=np.str_("moons") as given): its scalar constructor, np.dtype and those dtypes'
    classes; no arrays, no other objects."""
    import numpy as np

    scalar = getattr(getattr(np, "_core", None), "multiarray", None) or np.core.multiarray
    kinds = [getattr(np.dtypes, name) for name in dir(getattr(np, "dtypes", None))
             if name.endswith("DType") and (name == "StrDType" or any(k in name for k in ("Bool", "Int", "Float")))]
    return [scalar.scalar, np.dtype, *kinds]


def _name(obj) -> str:
    """An allowed global as pickle names it (NumPy 1's numpy.core.multiarray is NumPy 2's numpy._core.multiarray)."""
    return f"{obj.__module__}.{obj.__qualname__}".replace("numpy._core.", "numpy.core.")


def _load_numpy_numbers(path: Path) -> Any:
    """A checkpoint holding NumPy numbers or strings among its plain data (written by an older torch-tanhnet from
    settings given so), read with those alone allowed, each as the Python number or str it stands for;
    CheckpointError, naming what it holds that is refused, for a file that holds any other object."""
    import re

    import numpy as np

    allowed = _numpy_numbers()
    try:
        with torch.serialization.safe_globals(allowed):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one line, naming what the file holds when torch can tell
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001
            unsafe = []
        names = {_name(obj) for obj in allowed}
        unsafe = [name for name in unsafe if name.replace("numpy._core.", "numpy.core.") not in names]
        built = re.search(r"but got <class '([\w.]+)'>", str(e))  # an allowed global building a refused kind
        if not unsafe and built:  # np.bytes_, np.datetime64, np.void: a NumPy value of a dtype not allowed
            unsafe = [built.group(1)]
        if unsafe:
            raise CheckpointError(f"checkpoint {str(path)!r} holds objects other than tensors and plain data "
                                  f"({', '.join(unsafe[:3])}), which cannot be read safely") from None
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: not a file torch.save wrote, or cut short "
                              f"({type(e).__name__}); it cannot be resumed") from None

    def plain(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            return {plain(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        return value

    return plain(state)


def missing_folder(folder: Path, what: str = "run") -> str:
    """The words for resuming a folder that does not exist (a typo in --logdir, as often as not)."""
    return (f"{str(folder)!r} does not exist: {setting('resume')} continues a {what} in an existing folder (check "
            f"the path, or leave out {setting('resume')} to start one there)")


def damaged_part(path: Path) -> str | None:
    """The first part of a checkpoint (a zip, as torch.save writes one) whose bytes fail their CRC-32, else None (a
    file that is not a zip: torch.load then says what it is). torch.load checks none: a bit flipped in a tensor's
    bytes resumed a run silently from another weight (U[0, 0] −0.3431 read as −0.3436)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return None


# a folder that a run killed before its first checkpoint left (SIGKILL, the OOM killer, a C library's abort): its
# TensorBoard files alone, which the same command refused ("not empty") and --resume too ("no checkpoint"), unexplained
STOPPED_EARLY = ("the folder holds a run's TensorBoard files and no checkpoint: a run stopped before its first "
                 "checkpoint (killed, or ended by a C library), with nothing to resume; remove the folder to start it "
                 "again there")


def stopped_before_checkpoint(folder: Path, names: list[str] | None = None) -> bool:
    """Whether ``folder`` holds TensorBoard event files and nothing else (:data:`STOPPED_EARLY`); ``names``: its
    entries' names, where the caller has listed them already."""
    if names is None:
        try:
            names = [p.name for p in Path(folder).iterdir()]
        except OSError:
            return False
    return bool(names) and all(name.startswith("events.out.tfevents.") for name in names)


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` (tensors and plain data only: weights_only)."""
    path = Path(path)
    if not path.is_file():
        if not os.path.lexists(path.parent):  # a typo in --logdir said "no checkpoint at '.../checkpoint.pt'"
            raise CheckpointError(missing_folder(path.parent))
        if holds_sweep_files(path.parent):
            raise CheckpointError(f"no checkpoint at {str(path)!r}: the folder holds a sweep's; "
                                  f"{sweep_hint(path.parent)}")
        if (what := entry(path)) != "nothing":  # a folder, a FIFO, a dangling link where the checkpoint should be
            raise CheckpointError(f"no checkpoint at {str(path)!r}: {what} stands there, not a file")
        early = f": {STOPPED_EARLY}" if stopped_before_checkpoint(path.parent) else ""
        raise CheckpointError(f"no checkpoint at {str(path)!r}{early}")
    if (changed := damaged_part(path)) is not None:  # a file it cannot open: None, and torch.load's error below
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged: its part {changed!r} no longer matches the "
                              "checksum it was written with (the file changed on the disk or in a copy); it cannot "
                              "be resumed")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # objects weights_only refuses: NumPy numbers and strings (older versions saved
        state = _load_numpy_numbers(path)  # settings given so) are read as Python's, anything else refused
    except OSError as e:  # a file that cannot be opened or read (its permissions, an I/O error) is not a damaged one
        raise CheckpointError(f"cannot read checkpoint {str(path)!r} ({e.strerror or e}); it was left as it "
                              "is") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: not a file torch.save wrote, or cut short "
                              f"({type(e).__name__}); it cannot be resumed") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a torch-tanhnet checkpoint")
    return state


SHARES = "checkpoint.rank*-of-*.pt"  # a torchrun sweep's checkpoints, one a process (sweep/state.py writes them)


def share_path(folder: Path, rank: int, size: int) -> Path:
    """Process ``rank`` of ``size``'s checkpoint of a torchrun sweep in ``folder``."""
    return folder / f"checkpoint.rank{rank}-of-{size}.pt"


def share_sizes(folder: Path) -> list[int]:
    """The process counts of the shares in ``folder`` (checkpoint.rank<r>-of-<w>.pt: w, once per file)."""
    found = []
    for p in folder.glob(SHARES):
        rank, _, size = p.name[len("checkpoint.rank"):-len(".pt")].partition("-of-")
        if rank.isdigit() and size.isdigit() and int(rank) < int(size):
            found.append(int(size))
    return found


def holds_sweep_files(folder: Path) -> bool:
    """Whether ``folder`` holds a sweep's files: sweep.json, per-process checkpoints, or a checkpoint.pt of a sweep's
    kind (its sweep.json removed)."""
    if (folder / "sweep.json").exists() or any(folder.glob(SHARES)):
        return True
    return sweep_kind(folder / "checkpoint.pt")


def sweep_kind(path: Path) -> bool:
    """Whether the checkpoint at ``path`` is a sweep's (False when there is none, or it cannot be read)."""
    if not path.is_file():
        return False
    try:
        state = load(path)
    except (CheckpointError, OSError, RuntimeError, ValueError):
        return False
    return str(state.get("kind", "")).startswith("torch-tanhnet/sweep/")


def sweep_hint(folder: Path) -> str:
    """How to continue the sweep in ``folder``, as the end of a message: sweep.py's --resume, under torchrun with as
    many processes as it had where it checkpointed one share per process; or that it cannot be continued (a sweep
    stopped before its first checkpoint leaves sweep.json alone; a torchrun sweep stopped before every process had
    saved its share leaves some of their checkpoints, which a resume cannot start from)."""
    command = f"{project_script('sweep.py')} --logdir {shell(folder)} --resume"
    sizes = share_sizes(folder)
    if sizes:
        size = sizes[0]
        missing = [r for r in range(size) if not share_path(folder, r, size).exists()]
        if missing:
            return (f"it cannot be continued: process {missing[0]} of its {size} saved no checkpoint; remove the "
                    "folder to start it again")
        return f"continue it with torchrun --standalone --nproc_per_node={size} {command} (as many processes)"
    if (folder / "checkpoint.pt").is_file():
        return f"continue it with python {command}"
    return "it saved no checkpoint, so there is nothing of it to continue"
