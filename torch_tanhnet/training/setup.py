"""What a run is built from: its device, log folder, data, optimiser, batch order, and resumed settings."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import torch

from ..checks import cut, short
from . import checkpoint
from .checkpoint import CheckpointError
from .config import PER_INVOCATION, RESUMABLE, ConfigError, TrainConfig
from .data import DEFAULT_NOISE, DataError, Split, check_representable, load_csv, make_dataset, split
from .wording import Worded, entry, printable, setting, utf8, words

Tensor = torch.Tensor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda is not available on this machine")
    return torch.device(name)


# settings that tell runs apart in a run's default name, with their short forms
NAMED = (("hidden", "h{}"), ("optimizer", "{}"), ("lr", "lr{:g}"), ("momentum", "m{:g}"), ("epochs", "e{}"),
         ("batch_size", "bs{}"), ("weight_decay", "wd{:g}"), ("init_scale", "init{:g}"), ("n_samples", "n{}"),
         ("noise", "noise{:g}"), ("test_fraction", "test{:g}"), ("standardize", "std"), ("dtype", "{}"),
         ("seed", "seed{}"))  # every setting that defines a run (as HParams lists them), when not the default


def run_name(config: TrainConfig, now: datetime | None = None) -> str:
    """A run's default name, leading with what differs between runs, as TensorBoard shows ~17 characters:
    the time (month, day, hour, minute, second), then the data and the settings that differ from
    the defaults, e.g. ``1130-000300-moons`` or ``1130-000535-spiral-h16-adam-lr0.02-e5000``."""
    default = TrainConfig()
    stem = printable(Path(config.data).stem) if config.data else config.dataset  # a folder TensorBoard can write
    parts = [(now or datetime.now()).strftime("%m%d-%H%M%S"), cut(stem)]  # a folder name: at most 255 bytes
    parts += [form.format(getattr(config, k)) for k, form in NAMED if getattr(config, k) != getattr(default, k)
              and not _same_run(config, k)]
    return "-".join(parts)


def _same_run(config: TrainConfig, setting: str) -> bool:
    """Whether a setting that differs from the default changes nothing: the data set's own noise given, a momentum
    that Adam does not use."""
    if setting == "noise":
        return config.data is None and config.noise == DEFAULT_NOISE.get(config.dataset)
    return setting == "momentum" and config.optimizer == "adam"


def default_logdir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    """``runs/<run_name>``, not yet made: :func:`claim_logdir` makes it (-2, -3, … when taken)."""
    return root / run_name(config)


def not_a_folder(path: Path) -> Path | None:
    """The nearest of ``path`` and its parents that is there (or a dangling link), when it is not a folder: what
    stands where a mkdir of ``path`` needs a folder (a file, a FIFO, a link to nothing); None when there is none."""
    try:
        there = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
        return there if there is not None and not there.is_dir() else None
    except OSError:  # a folder that cannot be searched: mkdir's own error says so
        return None


def claim_logdir(base: Path) -> Path:
    """``base``, created here so that no other run can take it: a name already taken (two runs started in one
    second) gets -2, -3, … The folder is made with mkdir, which one process alone can win, never after a check
    that it does not exist yet (two runs could both pass that check and write into one folder)."""
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except OSError as e:
            if (blocker := not_a_folder(path.parent)) is not None:
                raise ConfigError("logdir", f"cannot create {str(path)!r} ({str(blocker)!r} is {entry(blocker)})"
                                  ) from None
            if not isinstance(e, FileExistsError):
                raise ConfigError("logdir", f"cannot create {str(path)!r} ({e.strerror or e})") from None
            k += 1
            path = base.with_name(f"{base.name}-{k}")


def take(path: Path, what: str) -> None:
    """A new run's (or sweep's: ``what``) first file, created exclusively: of two started at once into one new or
    empty folder (both passed the check that it was empty), one alone goes on; the other stops, writing nothing."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        raise ConfigError("logdir", f"{str(path.parent)!r} was just taken by another {what} started at the same "
                                    f"moment; choose another {setting('logdir')}") from None


def _umask() -> int | None:
    """This process's umask (Linux's /proc/self/status; reading it by os.umask would change it for a moment)."""
    value = _status_field("/proc/self", "Umask")
    return int(value, 8) if value and set(value) <= set("01234567") else None


def missing_folders(path: Path) -> list[Path]:
    """The folders of ``path`` (itself included) that do not exist, deepest first: what a mkdir would make."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def check_empty_logdir(logdir: Path, writer: str = "a new run") -> None:
    """Refuse a folder that holds anything: ``writer`` (a new run, a sweep) writes files under fixed names, and
    rather than guess which of a folder's files those could clash with, it writes only into a new or empty
    folder, so that nothing a user had there is ever replaced or mixed with its own."""
    try:
        held = sorted(p.name for p in logdir.iterdir()) if logdir.is_dir() else []
    except OSError as e:
        raise ConfigError("logdir", f"cannot read {str(logdir)!r} ({e.strerror or e})") from None
    if checkpoint.stopped_before_checkpoint(logdir, held):
        raise ConfigError("logdir", f"{str(logdir)!r} is not empty: {checkpoint.STOPPED_EARLY}; or choose another "
                                    + setting("logdir"))
    if held:
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise ConfigError("logdir", f"{str(logdir)!r} is not empty ({shown}); {writer} writes only into a new or "
                                    "empty folder, so that nothing there is overwritten: choose another "
                                    + setting("logdir"))


def _utf8_bytes(name: str) -> bool:
    """Whether the bytes of the file name ``name`` (as this Python decoded them) are UTF-8 text."""
    try:
        name.encode("utf-8", "surrogateescape").decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def check_utf8_name(logdir: Path, scratch: bool = False, resume: bool = False) -> None:
    """Raise ConfigError unless ``logdir``'s name is UTF-8 text: TensorBoard's writer encodes it as UTF-8 (a
    traceback at the first event), and ``tensorboard --logdir`` too (a traceback before it serves anything).
    ``scratch``: a dry run's temporary folder, named after TMPDIR, not by the user."""
    where = " (a dry run's temporary folder: TMPDIR)" if scratch else ""
    if utf8(str(logdir)) != str(logdir) and _utf8_bytes(str(logdir)):  # its bytes are UTF-8, read as another
        # encoding: LC_ALL=C with PYTHONUTF8=0 makes Python read names as ASCII, and the name then holds what
        # TensorBoard's writer refuses; renaming (as said before) would not help
        raise ConfigError("logdir", f"'{utf8(str(logdir))}'{where}: this Python reads file names as "
                                    f"{sys.getfilesystemencoding()} (its locale), not as UTF-8, and TensorBoard "
                                    "writes its events only in a folder whose name it reads as UTF-8 text; run it "
                                    "with PYTHONUTF8=1 or a UTF-8 locale (LC_ALL=C.UTF-8)")
    if utf8(str(logdir)) != str(logdir):
        fix = (f"rename the folder to a UTF-8 name and {setting('resume')} there" if resume and logdir.exists() else
               f"give a {setting('logdir')} or another TMPDIR" if scratch else f"choose another {setting('logdir')}")
        raise ConfigError("logdir", f"'{utf8(str(logdir))}'{where}: its name is not UTF-8 text, and TensorBoard "
                                    f"writes and reads its events only in a folder whose name is; {fix}")


def check_logdir(logdir: Path, temporary: bool = False) -> None:
    """Raise ConfigError unless ``logdir`` can be created and written; leave nothing behind that was not there.

    Run before anything else, so that an unusable folder (a file in the way, a read-only or missing
    file system, a name too long) is one line at start-up, not a traceback at the first save. ``temporary``: it
    is a dry run's own temporary folder, which no --logdir named (a umask of 777 blamed --logdir, not given).
    """
    missing: list[Path] = []
    try:
        blocker = not_a_folder(logdir)
        if blocker == logdir and logdir.is_symlink() and not logdir.exists():  # to nothing: mkdir says "exists"
            what = entry(logdir)
            fix = "choose another" if what.endswith("itself") else "create that folder or choose another"
            raise ConfigError("logdir", f"{str(logdir)!r} is {what}; {fix} {setting('logdir')}")
        if blocker == logdir:
            raise ConfigError("logdir", f"{str(logdir)!r} is {entry(logdir)}, not a folder")
        if blocker is not None:  # mkdir would say "File exists" or "Not a directory"
            raise ConfigError("logdir", f"cannot create {str(logdir)!r} ({str(blocker)!r} is {entry(blocker)})")
        folder = logdir
        while not folder.exists():  # the folders this check creates, deepest first
            missing.append(folder)
            folder = folder.parent
        logdir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=logdir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = e.strerror or str(e)
        if (umask := _umask()) is not None and umask & 0o300:  # a new folder's owner cannot write or enter it
            why += f"; the umask {umask:04o} makes every new folder so"
        if temporary:
            raise ConfigError("dry_run", f"cannot create or write its temporary folder {str(logdir)!r} ({why}); "
                                         f"give it a {setting('logdir')}, or a writable TMPDIR") from None
        raise ConfigError("logdir", f"cannot create or write {str(logdir)!r} ({why})") from None
    finally:
        for folder in missing:
            try:
                folder.rmdir()
            except OSError:
                pass


def check_new_logdir(logdir: Path) -> None:
    """Refuse, for a new run (not resumed), a folder that holds a run or anything else: a new run writes only into
    a new or empty folder, so that it neither replaces an earlier run's HParams session nor mixes its events
    with the earlier ones (a run killed before its first checkpoint leaves those and no checkpoint.pt)."""
    if checkpoint.holds_sweep_files(logdir):  # a sweep's folder (its checkpoint.pt a sweep's, not a run's)
        raise ConfigError("logdir", f"{str(logdir)!r} holds a sweep; a new run needs a new or empty "
                                    f"{setting('logdir')} (the sweep: {checkpoint.sweep_hint(logdir)})")
    if (logdir / "checkpoint.pt").is_file():  # anything else there (a folder, a FIFO) is refused as not empty
        raise ConfigError("logdir", f"{str(logdir)!r} already holds a run (checkpoint.pt); "
                                    f"continue it with {setting('resume')} or choose another {setting('logdir')}")
    check_empty_logdir(logdir)


@torch.no_grad()
def check_initial_weights(model, data: Split, config: TrainConfig) -> None:
    """Refuse in one line an ``--init-scale`` that makes the initial weights, or the loss they give on the training
    data, infinite or NaN in the run's dtype: nothing could be trained or drawn from them."""
    from ..cost import sample_costs

    finite_weights = all(bool(torch.isfinite(w).all()) for w in (model.U, model.W))
    if finite_weights:  # the loss as the logged metrics measure it (softplus(z) − y z, averaged)
        y = data.y_train.to(model.U.device, model.U.dtype)
        z = model(data.X_train.to(model.U.device, model.U.dtype))
        if bool(torch.isfinite(sample_costs(z, y).mean())):
            return
    what = "initial loss" if finite_weights else "initial weights"
    hint = f" or {setting('dtype')} float64" if config.dtype == "float32" else ""
    raise ConfigError("init_scale", f"{config.init_scale:g} makes the {what} infinite or NaN in {config.dtype}; "
                                    f"choose a smaller {setting('init_scale')}" + hint)


class OutOfMemory(Worded, RuntimeError):
    """The run needs more memory than there is; one line naming the settings that size it."""


def out_of_memory(e: BaseException, advice: str | None = None) -> OutOfMemory | None:
    """An OutOfMemory for an allocation that failed (MemoryError, torch's CPU or CUDA allocator, an error that says
    so), or for any error once the process has used its address space (``ulimit -v``) to within
    :data:`NEAR_LIMIT` (a thread that could not start, a library that could not be mapped, an import's
    SystemError), or for a thread that could not start elsewhere (the process limit, ``ulimit -u``); else None.
    Its text names the limit where there is one, and ends with ``advice`` (a script's flags; by default the
    training run's settings that size it)."""
    if isinstance(e, Worded):  # the package's own errors (an OutOfMemory already among them)
        return None
    if advice is None:
        advice = f"try a smaller {setting('n_samples')}, {setting('hidden')} or {setting('batch_size')}"
    first = (str(e).strip().splitlines() or [type(e).__name__])[0].split("] ", 1)[-1][:160]
    said = isinstance(e, MemoryError) or any(word in first.lower() for word in MEMORY_WORDS)
    limit = address_space_limit()
    if limit is not None and (said or limit - (mapped_peak() or 0) < NEAR_LIMIT):
        return OutOfMemory(f"out of memory ({first}) within this process's address-space limit of "
                           f"{_size(limit)} (ulimit -v {limit // 1024}); raise the limit, or {advice}")
    if said:
        return OutOfMemory(f"out of memory ({first}); {advice}")
    if first == "can't start new thread":  # no thread, far from any memory limit: the process limit (ulimit -u)
        nproc = _process_limit()
        bound = f"this user may run at most {nproc} processes and threads (ulimit -u {nproc}); " if nproc else ""
        return OutOfMemory(f"cannot start a thread ({first}): {bound}raise the limit, or end other processes")
    return None


def _process_limit() -> int | None:
    """This user's limit on processes and threads (RLIMIT_NPROC, ``ulimit -u``), None without one."""
    return _soft_limit("RLIMIT_NPROC")


def _soft_limit(name: str) -> int | None:
    """This process's soft limit ``name`` (a ``resource.RLIMIT_*``), None where it has none or cannot say (Windows,
    a limit this system lacks)."""
    try:
        import resource

        soft = resource.getrlimit(getattr(resource, name))[0]
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


# what an allocation that failed says (torch's CPU and CUDA allocators, C++, protobuf, the dynamic loader)
MEMORY_WORDS = ("out of memory", "can't allocate memory", "bad_alloc", "failed to map segment")
NEAR_LIMIT = 128 * 2**20  # an error with less address space than this left under the limit: it ran out


def address_space_limit() -> int | None:
    """This process's address-space limit in bytes (``ulimit -v``), None without one."""
    return _soft_limit("RLIMIT_AS")


def mapped_peak(proc: str = "/proc/self") -> int | None:
    """The most address space this process has mapped so far, in bytes (Linux), else None."""
    return _status_bytes(proc, "VmPeak")


def _status_bytes(proc: str, field: str) -> int | None:
    """A size from /proc/<pid>/status (``VmSize``, ``VmPeak``) in bytes; None where there is none."""
    value = _status_field(proc, field)
    return int(value) * 1024 if value is not None and value.isdigit() else None


def _status_field(proc: str, field: str) -> str | None:
    """A field's value in /proc/<pid>/status, its first word (``VmPeak: 641800 kB``: "641800"; ``Umask: 0022``:
    "0022"); None where the file or the field is not there (not Linux)."""
    try:
        status = Path(proc, "status").read_text()
        return next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:"))
    except (OSError, IndexError, StopIteration):
        return None


def available_memory() -> int | None:
    """Bytes this process could still get: available memory and free swap (Linux), else the physical memory; less
    where the process's own limits leave less (:func:`limit_headroom`)."""
    return memory_room(swap=True)[0]


def memory_room(swap: bool = True) -> tuple[int | None, str]:
    """The bytes this process could still get (as :func:`available_memory`; with ``swap`` False, without the free
    swap) and, in words for a message, the limit that leaves no more: ``""`` where that is the machine's memory, or
    `` under this process's address-space limit of 717 MB (ulimit -v 700000)``, or its cgroup's. (None, "") when
    unknown."""
    limit = address_space_limit()
    found = [(room, bound) for room, bound in (
        (machine_memory(swap), ""),
        (address_space_headroom(), limit and f" under this process's address-space limit of {_size(limit)} "
                                            f"(ulimit -v {limit // 1024})"),
        (_cgroup_headroom("/proc/self", "/sys/fs/cgroup"), " under its cgroup's memory limit (a container's)"),
    ) if room is not None]
    return min(found, key=lambda found: found[0]) if found else (None, "")


def machine_memory(swap: bool) -> int | None:
    """The machine's MemAvailable (and its free swap, with ``swap``) on Linux; elsewhere its physical memory (with
    ``swap``: what a run may page into) or its free pages; None when unknown."""
    keys = ("MemAvailable", "SwapFree") if swap else ("MemAvailable",)
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        return sum(int(info[k].split()[0]) * 1024 for k in keys if k in info) or None
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES" if swap else "SC_AVPHYS_PAGES")
    except (OSError, ValueError, AttributeError):
        return None


def least(*sizes: int | None) -> int | None:
    known = [s for s in sizes if s is not None]
    return min(known) if known else None


UNLIMITED = 2**62  # a cgroup's "no limit" reads as 2**63 less a page (v1) or "max" (v2)


def limit_headroom(proc: str = "/proc/self", cgroups: str = "/sys/fs/cgroup") -> int | None:
    """Bytes this process may still take under its own limits, where it has any (None: none, or unknown): its
    address-space limit (``ulimit -v``, :func:`address_space_headroom`) and its cgroup's memory limit (a
    container's, systemd's: v2 ``memory.max``, v1 ``memory.limit_in_bytes``, less the group's use; a parent's binds
    too). MemAvailable sees neither: a sweep under ``ulimit -v`` passed its check and ended in the allocator's
    traceback."""
    found = [room for room in (address_space_headroom(proc), _cgroup_headroom(proc, cgroups)) if room is not None]
    return min(found) if found else None


def address_space_headroom(proc: str = "/proc/self") -> int | None:
    """Bytes of address space left under RLIMIT_AS (``ulimit -v``) after what this process has mapped; None without
    such a limit."""
    limit, mapped = address_space_limit(), _status_bytes(proc, "VmSize")
    return None if limit is None or mapped is None else max(0, limit - mapped)


def _cgroup_headroom(proc: str, cgroups: str) -> int | None:
    found = []
    try:
        lines = Path(proc, "cgroup").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":  # v2
            root, names = Path(cgroups), ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1
            root, names = Path(cgroups, "memory"), ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        group = root.joinpath(*Path(path).parts[1:])
        for folder in (group, *group.parents):  # a parent's limit binds the groups below it too
            try:
                limit, used = (Path(folder, name).read_text().strip() for name in names)
                if limit != "max" and int(limit) < UNLIMITED:
                    found.append(max(0, int(limit) - int(used)))
            except (OSError, ValueError):
                pass
            if folder == root:
                break
    return min(found) if found else None


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def memory_shortfall(need: int, device: torch.device, gpu_need: int = 0, available: int | None = None) -> str | None:
    """Why ``need`` bytes on this machine (and ``gpu_need`` on ``device``'s GPU, if CUDA) will not fit, in words
    (``at least 8 TB of memory, more than the 12 GB this machine has free``), or None if they may: for the
    estimates of the training run (:func:`check_memory`) and the scripts (bench.py, check_gradients.py), checked
    before anything is allocated."""
    if device.type == "cuda" and gpu_need and torch.cuda.is_available():
        gpu_free = torch.cuda.mem_get_info(device)[0]
        if gpu_need > gpu_free:
            return f"at least {_size(gpu_need)} of memory, more than the {_size(gpu_free)} the GPU has free"
    free, bound = (available, "") if available is not None else memory_room()
    if free is None or need <= free:
        return None
    return f"at least {_size(need)} of memory, more than the {_size(free)} " + (f"left{bound}" if bound else
                                                                                  "this machine has free")


def check_memory(config: TrainConfig, device: torch.device, available: int | None = None) -> None:
    """Refuse in one line a run that could not fit in memory (``--hidden 10**12``, ``--n-samples 10**14``),
    before it allocates anything. The estimate errs low, so that only a run that cannot fit is refused: the
    data at 60 bytes a sample (measured: 75 at the peak, as generated, split and copied), the forward pass over
    all samples (2 N×H numbers), the hidden units' pictures at 400 kB a unit (measured: 800 kB) and the
    parameters; on CUDA, the activations against the GPU's free memory."""
    if config.data is not None:  # rows of a file: at least its size / 64 (a row is rarely longer)
        try:
            n = Path(config.data).stat().st_size // 64
        except OSError:
            return  # load_csv says what is wrong with the file
    else:
        n = config.n_samples
    h, itemsize = config.hidden, 4 if config.dtype == "float32" else 8
    data, activations, pictures = 60 * n, 2 * n * h * itemsize, 400_000 * h + 64 * h
    why = memory_shortfall(data + activations + pictures, device, activations, available)
    if why is None:
        return
    if data >= activations + pictures and config.data is None:
        raise ConfigError("n_samples", f"{n} samples would need {why}; choose fewer")
    raise ConfigError("hidden", f"{h} hidden units with {n} samples would need {why}; choose fewer")


def load_split(config: TrainConfig, read: tuple[Tensor, Tensor] | None = None) -> Split:
    """The run's data, float64 on the CPU: generated (seeded) or read from the CSV (``read``: the CSV's points and
    labels, already read), then split; checked to keep its values in the run's dtype."""
    if config.data is not None:
        X, y = read if read is not None else load_csv(config.data)
    else:
        X, y = make_dataset(config.dataset, config.n_samples, config.noise, config.seed)
    data = split(X, y, config.test_fraction, config.seed, config.standardize)
    try:
        check_representable(data, getattr(torch, config.dtype))
    except DataError:
        if config.data is not None or config.noise is None:  # a file's values (the built-in sets lie within ±2.5)
            raise
        reach = X.abs().max().item()  # a built-in set's points are where its noise put them: that is the setting
        raise ConfigError("noise", f"{config.noise:g} puts the {config.dataset} points out to {reach:.3g}, beyond "
                                   f"{config.dtype}'s range (±{torch.finfo(getattr(torch, config.dtype)).max:.4g}); "
                                   f"choose a smaller {setting('noise')}") from None
    return data


def fingerprint(s: Split) -> str:
    """A hash of the training data, so that a resumed run can tell it got the same data."""
    return data_fingerprint(s.X_train, s.y_train, s.X_test, s.y_test)


def data_fingerprint(*tensors: Tensor) -> str:
    """A hash of these tensors' numbers, e.g. a data file's points and labels (as read: the rows, not their
    spelling), so that a resumed sweep, or every process of a torchrun launch, can tell it got the same data."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """SGD or Adam, with the fused (one kernel for all parameters) update where this torch has one."""
    params = list(params)
    kind, kw = ((torch.optim.Adam, {}) if config.optimizer == "adam"
                else (torch.optim.SGD, {"momentum": config.momentum}))
    try:
        return kind(params, lr=config.lr, weight_decay=config.weight_decay, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):  # no fused update for this device or torch release
        return kind(params, lr=config.lr, weight_decay=config.weight_decay, **kw)


# what an optimizer's param_groups hold that shapes its update: a checkpoint's must be what its settings make
# (beta1, beta2: the ensemble optimizers' betas, one number or K numbers each)
UPDATE = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "betas", "beta1", "beta2", "eps",
          "amsgrad", "decoupled_weight_decay")


def _same(a, b) -> bool:
    """Equal settings of one kind: two numbers (1 and 1.0 alike), or two tensors (per-network settings) of one
    dtype and shape holding equal numbers, or equal values of one type."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return (isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and a.device == b.device and bool(torch.equal(a, b)))
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return (numbers or type(a) is type(b)) and a == b


@functools.cache
def filled_in(kind: type) -> dict:
    """What ``kind``'s load_state_dict puts in for a key that a saved param group lacks (one written by an older
    torch, before the key existed: Adam's decoupled_weight_decay before torch 2.7): its ``__setstate__``'s
    defaults, read by running it on a bare instance with one empty group."""
    probe, group = kind.__new__(kind), {"params": []}
    try:
        probe.__setstate__({"defaults": {}, "state": {}, "param_groups": [group]})
    except Exception:  # noqa: BLE001 - an optimizer whose __setstate__ needs more: nothing is filled in
        return {}
    return {k: v for k, v in group.items() if k != "params"}


def optimizer_settings_differ(optimizer: torch.optim.Optimizer, saved) -> str | None:
    """Where a checkpoint's optimizer param_groups (``saved``) differ from ``optimizer``'s, as the run's settings
    made it, in words (``lr is 0.001, not the settings' 0.5``); None when they agree. A key the saved group lacks
    counts as what ``optimizer.load_state_dict`` fills in for it (:func:`filled_in`; nothing for most keys).
    Resuming loads the optimizer as saved, so a difference would train on, silently, with other values."""
    made = optimizer.param_groups
    if not isinstance(saved, list) or len(saved) != len(made) or not all(isinstance(g, dict) for g in saved):
        return f"param_groups are {type(saved).__name__} {str(saved)[:40]}, not {len(made)} group(s)"
    defaults = filled_in(type(optimizer))
    for i, (mine, theirs) in enumerate(zip(made, saved)):
        where = f" in param group {i}" if len(made) > 1 else ""
        for key in UPDATE:
            if key not in mine:
                continue
            if key not in theirs and key not in defaults:
                return f"{key}{where} is missing, not the settings' {_shown(mine[key])}"
            value = theirs[key] if key in theirs else defaults[key]
            if not _same(value, mine[key]):
                found = _shown(value) + ("" if key in theirs else " (missing: torch reads it so)")
                if _kind(value) != _kind(mine[key]):  # a list where the settings hold K numbers as a tensor
                    return f"{key}{where} is {_kind(value)}, {found}, where the settings hold {_kind(mine[key])}, " \
                           f"{_shown(mine[key])}"
                return f"{key}{where} is {found}, not the settings' {_shown(mine[key])}"
    return None


def _kind(value) -> str:
    """What kind of setting ``value`` is, in words: a number (1 and 1.0 alike), K numbers as a tensor (float64 unless
    said), a list, ..."""
    if isinstance(value, Tensor):
        dtype = "" if value.dtype == torch.float64 else str(value.dtype).removeprefix("torch.") + " "
        return f"{value.numel()} number{'s' * (value.numel() != 1)} as a {dtype}tensor"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return f"a {type(value).__name__}"


def _shown(value) -> str:
    """A setting in a message: a per-network tensor as its list of numbers (and dtype when not float64)."""
    if isinstance(value, Tensor):
        return cut(repr(value.tolist()) + ("" if value.dtype == torch.float64 else f" ({value.dtype})"))
    return short(value)


@torch.no_grad()
def scale_initial_weights(model, scale: float) -> None:
    """U ← s·U, W ← s·W (``--init-scale``): TanhNet's default draw made larger or smaller; b and c start at 0.

    ``model`` is a TanhNet, or a TanhNetEnsemble with ``scale`` a tensor (K,) of one factor per network.
    """
    for w in (model.U, model.W):
        w.mul_(scale.to(w).view(-1, *([1] * (w.dim() - 1))) if isinstance(scale, Tensor) else scale)


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) alone, so resumable."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


# the settings that define a run, and its total: every checkpoint of this format holds them, and a resumed run
# reads each (a missing one would silently become its default). Not init_scale: it shapes only the first weights,
# which the checkpoint holds, and a checkpoint written before it was a setting was of its default, 1
REQUIRED = ("dataset", "data", "n_samples", "noise", "test_fraction", "standardize", "hidden", "optimizer", "lr",
            "momentum", "weight_decay", "epochs", "batch_size", "seed", "dtype")
GENERATOR = ("dataset", "n_samples", "noise")  # settings of the built-in data sets, which --data replaces


def check_data_source(config: TrainConfig, given: set[str] | None) -> None:
    """A built-in data set's setting given with ``data`` is refused (the command line: ``given`` names what the
    user typed), or, from Python (``given`` None: a setting that differs from its default), ignored with a
    warning: the points come from the file, and a setting silently ignored is a surprise."""
    if config.data is not None:
        _not_applying(config, given, GENERATOR, f"applies to the built-in data sets, not to {setting('data')} "
                                                f"{config.data!r}")


def check_optimizer_settings(config: TrainConfig, given: set[str] | None) -> None:
    """SGD's momentum given with Adam, which has none, is refused (the command line), or, from Python, ignored with a
    warning when it differs from its default: ``--optimizer adam --momentum 0.5`` trained without a word of it."""
    if config.optimizer != "sgd":
        _not_applying(config, given, ("momentum",), f"applies to {setting('optimizer')} sgd, not to {config.optimizer}")


def _not_applying(config: TrainConfig, given: set[str] | None, names: Iterable[str], why: str) -> None:
    """Settings that do not apply to this run: each one the user typed (``given``) is refused; from Python
    (``given`` None), each that differs from its default is warned of as ignored."""
    defaults = TrainConfig()
    for name in names:
        if given is not None and name in given:
            raise ConfigError(name, why + "; leave it out")
        if given is None and getattr(config, name) != getattr(defaults, name):
            warnings.warn(f"{name}={getattr(config, name)!r} {words(why, command_line=False)}: it is ignored",
                          UserWarning, stacklevel=6)  # the caller of train()


def effective(name: str, value, run: TrainConfig):
    """What a setting means in ``run``: a noise of None is the data set's default (and means nothing with a file)."""
    if name == "noise":
        return None if run.data is not None else (DEFAULT_NOISE.get(run.dataset) if value is None else value)
    return value


def resume_settings(config: TrainConfig, logdir: Path, given: set[str]) -> tuple[TrainConfig, dict]:
    """The run's saved settings, with the resumable ones the user gave; a change to any other is refused.

    Settings are compared by what they mean (a noise of None is the data set's default); a batch size
    of None (the whole training set) is compared by the Run, which knows the training set's size.
    """
    path = logdir / "checkpoint.pt"
    state = checkpoint.load(path)
    checkpoint.check(state, path)
    stored = state["config"]
    missing = [k for k in REQUIRED if k not in stored]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks the setting {missing[0]!r} (hand-edited?); "
                              "it cannot be resumed")
    # this invocation's own settings (--dry-run, --no-progress) always come from it, never from the checkpoint
    override = (RESUMABLE & given) | {"resume", "logdir"} | PER_INVOCATION
    saved = TrainConfig(**{k: v for k, v in stored.items()
                           if k in TrainConfig.__dataclass_fields__ and k not in PER_INVOCATION})
    merged = TrainConfig(**{**saved.as_dict(), **{k: getattr(config, k) for k in override}})
    try:  # the user's own settings were validated before: what fails here came from the checkpoint
        merged.validate()
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {str(path)!r} holds an invalid setting ({e}); "
                              "it cannot be resumed") from None
    for name in sorted(given - RESUMABLE):
        mine, theirs = effective(name, getattr(config, name), saved), effective(name, getattr(saved, name), saved)
        if name == "batch_size" and None in (mine, theirs):
            continue  # the whole training set, or a size that may equal it: the Run compares them
        if name in GENERATOR and saved.data is not None:
            continue  # the built-in data sets' settings mean nothing for a --data run: the Run refuses them typed
        if mine != theirs:
            raise ConfigError(name, f"{mine!r} differs from the checkpoint's {theirs!r}; "
                                    "a resumed run keeps its settings")  # effective values: noise None is 0.1
    return merged, state
