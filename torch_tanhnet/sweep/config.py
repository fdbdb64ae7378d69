"""The settings of a sweep: train.py's settings with several values each, the seeds, and the sweep's own."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from ..checks import short
from ..console import counted
from ..training import wording
from ..training.config import DEVICES, KIND_WORDS, ConfigError, TrainConfig, _is, beyond_int64, plain
from ..training.wording import setting
from . import space
from .space import Range

SESSIONS = ("auto", "runs", "settings")
MAX_RUNS = 10**7  # runs a sweep may train (a million runs of the default settings already need ~24 GiB)
TENSORBOARD_RUNS = 500  # beyond this many runs TensorBoard selects none by default ("for performance reasons")


@dataclass
class SweepConfig:
    values: dict[str, list] = field(default_factory=dict)  # a train.py setting -> its values (Ranges with random)
    seeds: list[int] = field(default_factory=lambda: list(range(10)))  # every setting trains once per seed
    random: int | None = None  # draw this many settings from the values instead of the grid
    random_seed: int = 0  # seeds the draw of --random
    solved_at: float = 0.95  # a run is solved when its final test accuracy reaches this
    device: str = "auto"  # auto (cuda when present), cpu or cuda
    logdir: str | None = None  # results, TensorBoard logs, checkpoint (None: sweeps/<MMDD-HHMMSS>-<dataset>)
    log_interval: int = 10  # steps between the metrics of every run (the curves and steps-to-solve)
    checkpoint_interval: int = 500  # epochs between checkpoints of the whole sweep (and one after each group)
    checkpoint_seconds: float = 30.0  # but no checkpoint inside a group sooner than this after the last one
    resume: bool = False  # continue the sweep in logdir from its checkpoint
    dry_run: bool = False  # 5 steps of each group, for smoke tests
    dist_timeout: float = 120.0  # under torchrun, seconds to wait for the other processes
    progress: bool = True  # show a progress bar
    gallery: int = 3  # solved and failed runs drawn for each setting's gallery
    sessions: str = "auto"  # HParams sessions: one per run, one per setting, or auto (per run up to TB's 500 runs)
    memory_limit: float | None = None  # bytes the sweep may use (None: what the machine has free); for tests

    def validate(self) -> None:
        """Raise ConfigError naming the first bad setting, in train.py's words."""
        def bad(name: str, why: str):  # str(): ``gallery: ...``; the command line: ``argument --gallery: ...``
            raise ConfigError(name, why)

        for f in fields(self):  # each of the sweep's own settings of its declared kind, as plain Python (they
            if f.name in ("values", "seeds"):  # reach the checkpoint and sweep.json): np.float64(0.9) becomes 0.9
                continue
            kinds = [k.strip() for k in f.type.split("|")]
            value = plain(getattr(self, f.name), kinds)
            if f.name != "random_seed" and (why := beyond_int64(value)) is not None:  # as TrainConfig's settings
                bad(f.name, why)
            if not (value is None and "None" in kinds or any(_is(value, k) for k in kinds)):
                bad(f.name, f"must be {' or '.join(KIND_WORDS[k] for k in kinds)}, got {short(value)}")
            if isinstance(value, str) and "\0" in value:  # open() says "embedded null byte", naming nothing
                bad(f.name, f"holds a NUL character, which no file or folder name can: {short(value)}")
            setattr(self, f.name, value)
        self.seeds = space.check_seeds(self.seeds)
        if self.random is not None and self.random < 1:
            bad("random", f"must be a positive integer, got {self.random}")
        if not self.resume and not 0 <= self.random_seed < 2**32:  # Python's Random took -1 as 1: two seeds drew
            # alike (a sweep started with one before this check resumes: its draws are made from the saved value)
            bad("random_seed", f"must be an integer in [0, 2**32), as a run's seed is, got {short(self.random_seed)}")
        self.values = space.check_values(self.values, self.random)
        settings = space.count(self.values)
        if not self.resume and self.random is not None and self.random > settings:  # drawn again until they
            # differ: it would not end (on --resume the values given are compared with the saved sweep's instead)
            bad("random", f"{self.random} draws, but the values make {counted(int(settings), 'different setting')}; "
                          f"draw at most that many, or leave out {setting('random')} for the grid of them all")
        runs = (self.random if self.random is not None else settings) * len(self.seeds)
        if runs > MAX_RUNS:  # before the settings are built: 10⁹ of them filled the memory before any other check
            what = f"{setting('random')} {self.random}" if self.random is not None else f"{settings:,.0f} settings"
            seeds = f"{len(self.seeds):,} seed{'s' * (len(self.seeds) != 1)}"  # with commas, as the runs
            raise ConfigError(f"the sweep would train {runs:,.0f} runs ({what} × {seeds}); at most {MAX_RUNS:,}: "
                              "give fewer values or seeds")
        for flag, value in (("log_interval", self.log_interval), ("checkpoint_interval", self.checkpoint_interval)):
            if value < 1:
                bad(flag, f"must be a positive integer, got {value}")
        if not (math.isfinite(self.checkpoint_seconds) and self.checkpoint_seconds >= 0):
            bad("checkpoint_seconds", f"must be a number of seconds ≥ 0, got {self.checkpoint_seconds}")
        if self.sessions not in SESSIONS:
            bad("sessions", f"must be one of {', '.join(SESSIONS)}, got {self.sessions!r}")
        if self.gallery < 0:
            bad("gallery", f"must be an integer ≥ 0, got {self.gallery}")
        if not (math.isfinite(self.solved_at) and 0 < self.solved_at <= 1):
            bad("solved_at", f"must be an accuracy in (0, 1], got {self.solved_at}")
        if not (math.isfinite(self.dist_timeout) and self.dist_timeout > 0):
            bad("dist_timeout", f"must be a positive number of seconds, got {self.dist_timeout}")
        if self.device not in DEVICES:
            bad("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.logdir == "":  # a shell variable that was not set: it named no folder
            bad("logdir", f"got '', which names no folder; give a folder, or leave {setting('logdir')} out for the "
                          "default")
        if self.resume and self.logdir is None:
            bad("resume", f"needs {setting('logdir')}, the folder of the sweep to continue")

    def settings(self) -> list[dict]:
        """The sweep's settings: the grid of the values, or ``random`` draws from them."""
        if self.random is not None:
            return space.sample(self.values, self.random, self.random_seed)
        return space.grid(self.values)

    def base(self) -> TrainConfig:
        """The TrainConfig every run starts from (its settings and seed then set): the sweep's device."""
        return TrainConfig(device=self.device, progress=False)

    def as_dict(self) -> dict:
        """Plain data (sweep.json, the checkpoint): a Range as {"low", "high", "log"}."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["values"] = {k: [{"low": v.low, "high": v.high, "log": v.log} if isinstance(v, Range) else v for v in vs]
                       for k, vs in self.values.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SweepConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["values"] = {k: [Range(**v) if isinstance(v, dict) else v for v in vs] for k, vs in d["values"].items()}
        return cls(**d)


# settings a resumed sweep may change; every other one defines the sweep and must stay
wording.register(SweepConfig.__dataclass_fields__)  # its errors name seeds, random, gallery, ... as train's do

RESUMABLE = {"device", "logdir", "checkpoint_interval", "checkpoint_seconds", "resume", "dist_timeout",
             "progress", "solved_at", "gallery", "sessions", "memory_limit"}
