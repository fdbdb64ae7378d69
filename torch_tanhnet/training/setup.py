"""What a run is built from: its device, log folder, data, optimiser, batch order, and resumed settings."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import torch

from . import checkpoint
from .config import RESUMABLE, ConfigError, TrainConfig
from .data import Split, load_csv, make_dataset, split

Tensor = torch.Tensor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("argument --device: cuda is not available on this machine")
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


def load_split(config: TrainConfig) -> Split:
    """The run's data, float64 on the CPU: generated (seeded) or read from the CSV, then split."""
    if config.data is not None:
        X, y = load_csv(config.data)
    else:
        X, y = make_dataset(config.dataset, config.n_samples, config.noise, config.seed)
    return split(X, y, config.test_fraction, config.seed, config.standardize)


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


def resume_settings(config: TrainConfig, logdir: Path, given: set[str]) -> tuple[TrainConfig, dict]:
    """The run's saved settings, with the resumable ones the user gave; a change to any other is refused."""
    state = checkpoint.load(logdir / "checkpoint.pt")
    saved = TrainConfig(**{k: v for k, v in state["config"].items() if k in TrainConfig.__dataclass_fields__})
    for name in sorted(given - RESUMABLE):
        if getattr(config, name) != getattr(saved, name):
            raise ConfigError(f"argument --{name.replace('_', '-')}: {getattr(config, name)!r} differs from "
                              f"the checkpoint's {getattr(saved, name)!r}; a resumed run keeps its settings")
    override = (RESUMABLE & given) | {"resume", "logdir"}
    return TrainConfig(**{**saved.as_dict(), **{k: getattr(config, k) for k in override}}), state
