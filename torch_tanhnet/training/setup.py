"""What a run is built from: its device, log folder, data, optimiser, batch order, and resumed settings."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

import torch

from . import checkpoint
from .config import PER_INVOCATION, RESUMABLE, ConfigError, TrainConfig
from .data import Split, check_representable, load_csv, make_dataset, split

Tensor = torch.Tensor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda is not available on this machine")
    return torch.device(name)


# settings that tell runs apart in a run's default name, with their short forms
NAMED = (("hidden", "h{}"), ("optimizer", "{}"), ("lr", "lr{:g}"), ("batch_size", "bs{}"), ("weight_decay", "wd{:g}"),
         ("standardize", "std"), ("seed", "seed{}"))


def run_name(config: TrainConfig, now: datetime | None = None) -> str:
    """A run's default name, leading with what differs between runs, as TensorBoard shows ~17 characters:
    the time (month, day, hour, minute, second), then the data and the settings that differ from
    the defaults, e.g. ``1130-000300-moons`` or ``1130-000535-spiral-h16-adam-lr0.02``."""
    default = TrainConfig()
    parts = [(now or datetime.now()).strftime("%m%d-%H%M%S"), Path(config.data).stem if config.data else config.dataset]
    parts += [form.format(getattr(config, k)) for k, form in NAMED if getattr(config, k) != getattr(default, k)]
    return "-".join(parts)


def default_logdir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    """``runs/<run_name>``; a name already taken (two runs in one second) gets -2, -3, …"""
    name = run_name(config)
    path, k = root / name, 1
    while path.exists():
        k += 1
        path = root / f"{name}-{k}"
    return path


def check_logdir(logdir: Path) -> None:
    """Raise ConfigError unless ``logdir`` can be created and written; leave nothing behind that was not there.

    Run before anything else, so that an unusable folder (a file in the way, a read-only or missing
    file system, a name too long) is one line at start-up, not a traceback at the first save.
    """
    missing: list[Path] = []
    try:
        if logdir.exists() and not logdir.is_dir():
            raise ConfigError("logdir", f"{str(logdir)!r} is a file, not a folder")
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
        raise ConfigError("logdir", f"cannot create or write {str(logdir)!r} ({why})") from None
    finally:
        for folder in missing:
            try:
                folder.rmdir()
            except OSError:
                pass


def load_split(config: TrainConfig) -> Split:
    """The run's data, float64 on the CPU: generated (seeded) or read from the CSV, then split; checked to
    keep its values in the run's dtype."""
    if config.data is not None:
        X, y = load_csv(config.data)
    else:
        X, y = make_dataset(config.dataset, config.n_samples, config.noise, config.seed)
    data = split(X, y, config.test_fraction, config.seed, config.standardize)
    check_representable(data, getattr(torch, config.dtype))
    return data


def fingerprint(s: Split) -> str:
    """A hash of the training data, so that a resumed run can tell it got the same data."""
    h = hashlib.sha256()
    for t in (s.X_train, s.y_train, s.X_test, s.y_test):
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """SGD or Adam, with the fused (one kernel for all parameters) update where this torch has one."""
    params = list(params)
    kind, kw = (torch.optim.Adam, {}) if config.optimizer == "adam" else (torch.optim.SGD, {"momentum": config.momentum})
    try:
        return kind(params, lr=config.lr, weight_decay=config.weight_decay, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):  # no fused update for this device or torch release
        return kind(params, lr=config.lr, weight_decay=config.weight_decay, **kw)


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) alone, so resumable."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def resume_settings(config: TrainConfig, logdir: Path, given: set[str]) -> tuple[TrainConfig, dict]:
    """The run's saved settings, with the resumable ones the user gave; a change to any other is refused."""
    state = checkpoint.load(logdir / "checkpoint.pt")
    saved = TrainConfig(**{k: v for k, v in state["config"].items()
                           if k in TrainConfig.__dataclass_fields__ and k not in PER_INVOCATION})
    for name in sorted(given - RESUMABLE):
        if getattr(config, name) != getattr(saved, name):
            raise ConfigError(name, f"{getattr(config, name)!r} differs from the checkpoint's "
                                    f"{getattr(saved, name)!r}; a resumed run keeps its settings")
    # this invocation's own settings (--dry-run, --no-progress) always come from it, never from the checkpoint
    override = (RESUMABLE & given) | {"resume", "logdir"} | PER_INVOCATION
    return TrainConfig(**{**saved.as_dict(), **{k: getattr(config, k) for k in override}}), state
