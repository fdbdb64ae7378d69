"""The settings of a training run: one typed dataclass, validated in one place."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .data import GENERATORS

OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")


class ConfigError(ValueError):
    """A bad setting; its message reads ``argument --flag: ...`` like argparse's own."""


@dataclass
class TrainConfig:
    dataset: str = "moons"  # built-in generator: moons, circles, xor, spiral, gauss
    data: str | None = None  # a CSV file (x1, x2, label) used instead of the generator
    n_samples: int = 500  # samples drawn from the generator
    noise: float | None = None  # generator noise (None: the generator's default)
    test_fraction: float = 0.2  # share of samples held out for loss/test, accuracy/test
    standardize: bool = False  # scale features to zero mean, unit variance (fitted on train)
    hidden: int = 3  # hidden tanh units (the seed has 3)
    init_scale: float = 1.0  # multiplies TanhNet's initial U and W (the biases start at 0)
    optimizer: str = "sgd"  # sgd or adam
    lr: float = 0.5  # learning rate
    momentum: float = 0.9  # SGD momentum (ignored by adam)
    weight_decay: float = 0.0  # L2 penalty added by the optimizer
    epochs: int = 2000  # total epochs to reach (a resumed run continues up to it)
    batch_size: int | None = None  # samples per step; None: the full training set (the seed's ε)
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
        def bad(flag: str, why: str):
            raise ConfigError(f"argument --{flag}: {why}")

        if self.data is None and self.dataset not in GENERATORS:
            bad("dataset", f"unknown dataset {self.dataset!r}; choose from {', '.join(GENERATORS)}")
        for flag, value in (("n-samples", self.n_samples), ("hidden", self.hidden), ("epochs", self.epochs),
                            ("log-interval", self.log_interval), ("image-interval", self.image_interval),
                            ("checkpoint-interval", self.checkpoint_interval)):
            if value < 1:
                bad(flag, f"must be a positive integer, got {value}")
        if not 0 <= self.seed < 2**32:
            bad("seed", f"must be an integer in [0, 2**32), got {self.seed}")
        if self.batch_size is not None and self.batch_size < 1:
            bad("batch-size", f"must be a positive integer, got {self.batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad("lr", f"must be a positive number, got {self.lr}")
        if not (math.isfinite(self.init_scale) and self.init_scale > 0):
            bad("init-scale", f"must be a positive number, got {self.init_scale}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            bad("momentum", f"must be in [0, 1), got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            bad("weight-decay", f"must be a number ≥ 0, got {self.weight_decay}")
        if self.noise is not None and not (math.isfinite(self.noise) and self.noise >= 0):
            bad("noise", f"must be a number ≥ 0, got {self.noise}")
        if not 0 < self.test_fraction < 1:
            bad("test-fraction", f"must be between 0 and 1 (exclusive), got {self.test_fraction}")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.dtype not in DTYPES:
            bad("dtype", f"must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not (math.isfinite(self.dist_timeout) and self.dist_timeout > 0):
            bad("dist-timeout", f"must be a positive number of seconds, got {self.dist_timeout}")
        if self.device not in DEVICES:
            bad("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.resume and self.logdir is None:
            bad("resume", "needs --logdir, the folder of the run to continue")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# settings a resumed run may change; every other one defines the run and must stay
RESUMABLE = {"epochs", "device", "log_interval", "image_interval", "checkpoint_interval", "progress", "resume",
             "dry_run", "logdir", "data", "dist_timeout"}

