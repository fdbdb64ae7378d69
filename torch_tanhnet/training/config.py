"""The settings of a training run: one typed dataclass, validated in one place."""

from __future__ import annotations

import math
import numbers
import os
import sys
from dataclasses import dataclass, fields

from ..checks import short
from ..numbers import past_float, past_int64
from .data import GENERATORS
from .wording import Worded, flag, setting, words

SMALLEST_NORMAL = {"float32": 2.0**-126, "float64": sys.float_info.min}  # torch.finfo(dtype).tiny

OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")


KIND_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "True or False", "None": "None"}


def _is(value, kind: str) -> bool:
    """Whether ``value`` is of the annotation ``kind`` (a bool is no integer or number here)."""
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    return isinstance(value, {"int": int, "float": (int, float), "str": str}.get(kind, ()))


def beyond_int64(value) -> str | None:
    """Why a number is too large for a setting (every count, size, seed and rate here fits in an int64, and one past
    a float's range overflowed the checks and TensorBoard's), or None."""
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return past_int64(len(str(abs(value))))
    if isinstance(value, numbers.Real) and not isinstance(value, (int, float)):  # Fraction(10**400)
        try:
            float(value)
        except OverflowError:
            return past_float("a number too large for a float")
    return None


def plain(value, kinds: list[str]):
    """``value`` as the plain Python value it stands for, where it clearly stands for one of ``kinds``: a NumPy or
    torch scalar (np.float32, np.int64, np.bool_, a 0-d tensor) as a float, int or bool, a path as a str, a
    subclass as its base; anything else as it is (for :func:`_is` to judge). Settings reach checkpoints and JSON,
    and a NumPy object there makes a checkpoint that ``torch.load(weights_only=True)`` refuses to read."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.is_complex() or value.is_meta:
            return value
        value = value.item()  # a bool, int or float
    if isinstance(value, (bool, np.bool_)):
        return bool(value) if "bool" in kinds or isinstance(value, bool) else value
    if isinstance(value, numbers.Integral) and ("int" in kinds or "float" in kinds):
        return int(value)
    if isinstance(value, numbers.Real) and "float" in kinds:
        try:
            return float(value) + 0.0  # -0.0 as 0.0: --noise -0 named a folder "noise-0" and saved -0.0
        except OverflowError:  # Fraction(10**400): left as it is, for beyond_int64 to name
            return value
    if "str" in kinds and isinstance(value, (str, os.PathLike)):
        value = os.fspath(value)
        return str.__str__(value) if isinstance(value, str) else value
    return value


class ConfigError(Worded, ValueError):
    """A bad setting: ``field`` names it. str() reads ``lr: must be ...`` (Python's names);
    :meth:`for_command_line` reads ``argument --lr: must be ...`` like argparse's own.

    ``ConfigError(message)``, without a field, is a message that names no one setting; the settings it
    does name are written with :func:`~.wording.setting`, as in ``why``. The sweep's settings
    (:class:`~torch_tanhnet.sweep.config.SweepConfig`) are named the same way.
    """

    def __init__(self, field: str, why: str | None = None) -> None:
        if why is None:  # one message, as it is
            self.field, self.why = None, field
            super().__init__(field)
            return
        self.field, self.why = field, why
        super().__init__(f"{field}: {why}")

    def for_command_line(self) -> str:
        if self.field is None:
            return words(self.why, command_line=True)
        return f"argument {flag(self.field)}: {words(self.why, command_line=True)}"


@dataclass
class TrainConfig:
    dataset: str = "moons"  # built-in generator: moons, circles, xor, spiral, gauss
    data: str | None = None  # a CSV file (x1, x2, label) used instead of the generator
    n_samples: int = 500  # samples drawn from the generator
    noise: float | None = None  # generator noise (None: the generator's default)
    test_fraction: float = 0.2  # share of samples held out for loss/test, accuracy/test
    standardize: bool = False  # scale features to zero mean, unit variance (fitted on train)
    hidden: int = 3  # hidden tanh units (the handout has 3)
    init_scale: float = 1.0  # multiplies TanhNet's initial U and W (the biases start at 0)
    optimizer: str = "sgd"  # sgd or adam
    lr: float = 0.5  # learning rate
    momentum: float = 0.9  # SGD momentum (ignored by adam)
    weight_decay: float = 0.0  # L2 penalty added by the optimizer
    epochs: int = 2000  # total epochs to reach (a resumed run continues up to it)
    batch_size: int | None = None  # samples per step; None: the full training set (the handout's ε)
    seed: int = 0  # seeds data, split, initialisation and batch order
    dtype: str = "float32"  # float32 or float64 for the model and the data
    device: str = "auto"  # auto (cuda when present), cpu or cuda
    logdir: str | None = None  # TensorBoard/checkpoint folder (None: runs/<MMDD-HHMMSS>-<dataset>-<changes>)
    log_interval: int = 10  # steps between scalar logs
    image_interval: int = 500  # steps between pictures, histograms and the Hessian's extreme eigenvalues
    checkpoint_interval: int = 500  # epochs between checkpoints (and one at the end)
    resume: bool = False  # continue the run in logdir from its checkpoint
    dry_run: bool = False  # a few steps only, for smoke tests
    dist_timeout: float = 120.0  # seconds a torchrun process waits for the others before failing
    progress: bool = True  # show a progress bar

    def validate(self) -> None:
        """Raise ConfigError naming the first bad setting."""
        def bad(field: str, why: str):
            raise ConfigError(field, why)

        for f in fields(self):  # each setting of its declared kind (Python callers can pass anything), as plain
            kinds = [k.strip() for k in f.type.split("|")]  # Python: np.float64(0.5) becomes 0.5, Path("x") "x"
            value = plain(getattr(self, f.name), kinds)
            setattr(self, f.name, value)
            # 10**400: math.isfinite and TensorBoard's float() overflowed (a seed's own range says more)
            if f.name != "seed" and (why := beyond_int64(value)) is not None:
                bad(f.name, why)
            if not (value is None and "None" in kinds or any(_is(value, k) for k in kinds)):
                hint = f" (write '{str(value).removeprefix('torch.')}')" if f.name == "dtype" and str(value) in (
                    "torch.float32", "torch.float64") else ""  # the modules' form: a setting's is its name
                bad(f.name, f"must be {' or '.join(KIND_WORDS[k] for k in kinds)}, got {short(value)}{hint}")
            if isinstance(value, str) and "\0" in value:  # open() and os.stat say "embedded null byte", naming nothing
                bad(f.name, f"holds a NUL character, which no file or folder name can: {short(value)}")
        if self.data is None and self.dataset not in GENERATORS:
            hint = f" (a file: {setting('data')} {self.dataset})" if self.dataset.lower().endswith(".csv") else ""
            bad("dataset", f"unknown dataset {self.dataset!r}; choose from {', '.join(GENERATORS)}{hint}")
        for field, value in (("n_samples", self.n_samples), ("hidden", self.hidden), ("epochs", self.epochs),
                             ("log_interval", self.log_interval), ("image_interval", self.image_interval),
                             ("checkpoint_interval", self.checkpoint_interval)):
            if value < 1:
                bad(field, f"must be a positive integer, got {value}")
        if not 0 <= self.seed < 2**32:
            bad("seed", f"must be an integer in [0, 2**32), got {short(self.seed)}")
        if self.batch_size is not None and self.batch_size < 1:
            bad("batch_size", f"must be a positive integer, got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad("lr", f"must be a positive number, got {self.lr}")
        if not (math.isfinite(self.init_scale) and self.init_scale > 0):
            bad("init_scale", f"must be a positive number, got {self.init_scale}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            bad("momentum", f"must be in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            bad("weight_decay", f"must be a number ≥ 0, got {self.weight_decay}")
        if self.noise is not None and not (math.isfinite(self.noise) and self.noise >= 0):
            bad("noise", f"must be a number ≥ 0, got {self.noise}")
        if not 0 < self.test_fraction < 1:
            bad("test_fraction", f"must be between 0 and 1 (exclusive), got {self.test_fraction}")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.dtype not in DTYPES:
            bad("dtype", f"must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        smallest = SMALLEST_NORMAL[self.dtype]  # a rate or scale below it is 0 (or a few bits) in the run's dtype:
        for field, value, what in (("lr", self.lr, "its updates"), ("init_scale", self.init_scale, "its weights")):
            if value < smallest:  # lr 1e-320 left the weights as drawn, init_scale 1e-300 all ±0 (a saddle), silently
                bad(field, f"{value:g} is below {self.dtype}'s smallest normal number ({smallest:.4g}): {what} "
                           "would be 0 in it, and the network would not train")
        if not (math.isfinite(self.dist_timeout) and self.dist_timeout > 0):
            bad("dist_timeout", f"must be a positive number of seconds, got {self.dist_timeout}")
        if self.device not in DEVICES:
            bad("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.logdir == "":  # a shell variable that was not set: it named no folder (the default was taken)
            bad("logdir", f"got '', which names no folder; give a folder, or leave {setting('logdir')} out for the "
                          "default")
        if self.data == "":
            bad("data", "got '', which names no file")
        if self.resume and self.logdir is None:
            bad("resume", f"needs {setting('logdir')}, the folder of the run to continue")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def run_settings(self) -> dict:
        """The settings a checkpoint keeps: all but those of one invocation (:data:`PER_INVOCATION`)."""
        return {k: v for k, v in self.as_dict().items() if k not in PER_INVOCATION}


# settings of one invocation, not of the run: never saved with it, never taken from a checkpoint
# (older checkpoints hold them: they are ignored), never inherited by a later --resume
PER_INVOCATION = {"dry_run", "progress"}
# settings a resumed run may change; every other one defines the run and must stay
RESUMABLE = {"epochs", "device", "log_interval", "image_interval", "checkpoint_interval", "resume", "logdir", "data",
             "dist_timeout"} | PER_INVOCATION

