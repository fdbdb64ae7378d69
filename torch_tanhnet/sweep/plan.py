"""How a sweep is trained: its runs in groups (one ensemble each), their memory and their time, before any work.

Runs train together when everything that shapes the ensemble's tensors or its loop agrees:
the width (``hidden``), the optimiser, the dtype, the number of steps (``epochs``,
``batch_size``) and the training and test set sizes. Everything else (the data set, its noise,
the learning rate, momentum, weight decay, initial scale, the seed) is per network. In a
typical sweep a group is a width; groups train one after the other, narrowest first.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property

import torch

from ..console import counted
from ..module import TanhNet
from ..training.config import ConfigError, TrainConfig
from ..training.data import DataError, load_csv
from ..training.setup import (
    check_initial_weights,
    load_split,
    memory_room,
    scale_initial_weights,
)
from ..training.wording import setting
from .config import SweepConfig
from .data import DATA_SETTINGS, data_key
from .metrics import D_IN, curvature_bytes, network_parameters
from .space import Run, folder_names, runs, swept, unique_names, value_text

D = D_IN  # the data sets are 2-D
DRY_RUN_STEPS = 5  # --dry-run: each group trains at most this many steps


class SweepTooLarge(ConfigError):
    """The sweep would not fit in memory; one line for the user."""


@dataclass
class Group:
    """Runs trained as one ensemble: settings ``settings`` (indices) times every seed."""

    index: int
    settings: list[int]
    hidden: int
    optimizer: str
    dtype: str
    epochs: int
    batch_size: int  # the batch size the runs use (the training set's size for full batch)
    n_train: int
    n_test: int
    runs: list[Run]  # in run order

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.batch_size)

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def describe(self) -> str:
        batch = "full batch" if self.batch_size == self.n_train else f"batches of {self.batch_size}"
        return (f"hidden {self.hidden}, {self.optimizer}, {self.dtype}: {counted(len(self.runs), 'run')} × "
                f"{self.steps} steps ({self.n_train} training samples, {batch})")


@dataclass
class Plan:
    config: SweepConfig
    settings: list[dict]  # every setting, in order
    names: list[str]  # each setting's name (its swept values)
    swept: list[str]  # the fields that vary between settings
    groups: list[Group]
    device: torch.device
    # each --data file's points and labels, read once when planning: every group trains on these, so a file
    # edited while the sweep runs changes nothing (path as given -> (X, y))
    files: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    @property
    def n_runs(self) -> int:
        return len(self.settings) * len(self.config.seeds)

    @cached_property
    def folders(self) -> list[str]:
        """Each setting's name as a file or folder name (:func:`.space.folder_names`): where its outputs go."""
        return folder_names(self.names)

    @cached_property
    def runs(self) -> list[Run]:
        """Every run, by index."""
        return sorted((r for g in self.groups for r in g.runs), key=lambda r: r.index)

    def log_steps(self, group: Group) -> list[int]:
        """The steps at which every run of ``group`` is measured: each log_interval-th, and the last."""
        total = self.total_steps(group)
        steps = list(range(self.config.log_interval, total + 1, self.config.log_interval))
        return steps if steps and steps[-1] == total else steps + [total]

    def total_steps(self, group: Group) -> int:
        return min(group.steps, DRY_RUN_STEPS) if self.config.dry_run else group.steps


def split_sizes(config: TrainConfig, rows: dict[str, int]) -> tuple[int, int]:
    """(n_train, n_test) as training.data.split makes them, from the settings alone (a CSV file: its rows)."""
    n = rows[config.data] if config.data is not None else config.n_samples
    n_test = round(n * config.test_fraction)
    return n - n_test, n_test


def read_files(settings: list[dict]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each --data file's points and labels (read once; a bad file raises DataError here, before any work)."""
    return {path: load_csv(path) for path in dict.fromkeys(s["data"] for s in settings if s["data"] is not None)}


def make_plan(config: SweepConfig, device: torch.device) -> Plan:
    """Validate, expand and group the sweep, and check that it fits in memory (nothing is trained)."""
    config.validate()
    settings = config.settings()
    files = read_files(settings)
    rows = {path: X.shape[0] for path, (X, _) in files.items()}
    base = config.base()
    keyed: dict[tuple, list[int]] = {}
    configs = [TrainConfig(**{**base.as_dict(), **s, "seed": config.seeds[0]}) for s in settings]
    for i, cfg in enumerate(configs):
        n_train, n_test = split_sizes(cfg, rows)
        batch = min(cfg.batch_size or n_train, n_train) if n_train > 0 else 1
        keyed.setdefault((cfg.hidden, cfg.optimizer, cfg.dtype, cfg.epochs, batch, n_train, n_test), []).append(i)
    varied = swept(settings)
    plan = Plan(config, settings, unique_names(settings, varied), varied, [], device, files)
    check_memory(plan, keyed, device)
    drawn = set()
    for cfg in configs:  # the data settings' errors (DataError, in train.py's words) before any training
        if data_key(cfg) not in drawn:
            try:
                load_split(cfg, files.get(cfg.data))
            except DataError as e:  # where the data settings vary, which of them: a feature's or a split's error
                data_varied = [f for f in varied if f in DATA_SETTINGS]  # named no file of several, nor which N
                if not data_varied:
                    raise
                which = ", ".join(f"{DATA_SETTINGS[f]} {value_text(getattr(cfg, f))}" for f in data_varied)
                raise DataError(f"with {which}: {e.text}") from None
            drawn.add(data_key(cfg))
    check_initial_scales(configs, config.seeds, files, rows)
    every = runs(settings, config.seeds, base)
    for index, (key, members) in enumerate(sorted(keyed.items(), key=lambda kv: (kv[0][0], kv[1][0]))):
        hidden, optimizer, dtype, epochs, batch, n_train, n_test = key
        S = len(config.seeds)
        group_runs = [every[s * S + j] for s in members for j in range(S)]
        plan.groups.append(Group(index, members, hidden, optimizer, dtype, epochs, batch, n_train, n_test, group_runs))
    return plan


def check_initial_scales(configs: list[TrainConfig], seeds: list[int], files: dict, rows: dict[str, int]) -> None:
    """train.py's refusal of an ``--init-scale`` that makes a run's initial weights, or its initial loss, infinite or
    NaN in its dtype (:func:`~torch_tanhnet.training.setup.check_initial_weights`), for every run of a setting whose
    scale could: |U| and |W| start below Xavier's bound times the scale, |z| below H times |W|'s, and the loss
    sums N such terms; a setting whose bounds stay well inside its dtype's range is passed without drawing."""
    for cfg in configs:
        largest = torch.finfo(getattr(torch, cfg.dtype)).max
        n = rows[cfg.data] if cfg.data is not None else cfg.n_samples
        bound_U = torch.nn.init.calculate_gain("tanh") * math.sqrt(6 / (D + cfg.hidden))
        bound_z = cfg.hidden * math.sqrt(6 / (cfg.hidden + 1))
        if cfg.init_scale * max(bound_U, bound_z * n) < largest / 16:
            continue
        for seed in seeds:
            run = TrainConfig(**{**cfg.as_dict(), "seed": seed})
            with torch.random.fork_rng(devices=[]):  # the draw train.py makes, leaving the caller's generator alone
                torch.manual_seed(seed)
                model = TanhNet(D, cfg.hidden, dtype=getattr(torch, cfg.dtype))
            scale_initial_weights(model, cfg.init_scale)
            check_initial_weights(model, load_split(run, files.get(run.data)), run)


# ---- memory ----------------------------------------------------------------------------------------

def group_bytes(K: int, H: int, n_train: int, n_test: int, batch: int, itemsize: int, logs: int,
                device_type: str = "cpu") -> int:
    """What training one group holds at once, from its sizes, and what its curvature at the end adds (see
    docs/sweep.md)."""
    N = n_train + n_test
    P = network_parameters(H)
    data = K * (n_train + N) * (D + 1) * itemsize  # the training set, and training + test sets side by side
    batches = K * batch * (D + 1) * itemsize * (batch < n_train)  # a mini-batch gathered each step
    model = K * P * (itemsize * 4 + 8)  # parameters, gradients, two optimiser states; the kernel's double sums
    history = logs * K * 4 * 8  # four metrics at each log step, float64
    torch_ops = K * N * (H + 4) * itemsize  # the evaluation's hidden layer where it runs as torch ops
    curvature = curvature_bytes(n_train, H, device_type)  # at the end, a batch of networks in float64
    return data + batches + model + history + max(torch_ops, curvature)


def free_memory(device: torch.device) -> tuple[int | None, str]:
    """Bytes free for the sweep: the device's free memory on CUDA; on Linux MemAvailable, or less where the
    process's limits (``ulimit -v``, its cgroup's) leave less; None when unknown. With it, the limit that binds
    in words (setup.memory_room)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], ""
    return memory_room(swap=False)


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**29 else f"{n / 2**20:.0f} MiB"


def check_memory(plan: Plan, keyed: dict[tuple, list[int]], device: torch.device) -> None:
    """Raise SweepTooLarge when the largest group, with every group's results kept, would not fit (estimated)."""
    S = len(plan.config.seeds)
    kept, largest, worst = 0, 0, None
    for (hidden, _, dtype, epochs, batch, n_train, n_test), members in keyed.items():
        K = len(members) * S
        steps = epochs * math.ceil(n_train / batch)
        logs = math.ceil(min(steps, DRY_RUN_STEPS if plan.config.dry_run else steps) / plan.config.log_interval) + 1
        itemsize = torch.empty((), dtype=getattr(torch, dtype)).element_size()
        need = group_bytes(K, hidden, n_train, n_test, batch, itemsize, logs, device.type)
        kept += logs * K * 4 * 8 + K * network_parameters(hidden) * itemsize  # its history and final weights
        if need > largest:
            largest, worst = need, (hidden, K, n_train + n_test)
    need = largest + kept
    free, bound = (plan.config.memory_limit, "") if plan.config.memory_limit is not None else free_memory(device)
    if free is not None and need > 0.8 * free:
        hidden, K, N = worst
        where = "on the GPU" if device.type == "cuda" else "in memory"
        raise SweepTooLarge(
            f"the sweep would need about {gib(need)} {where} (its largest group: hidden {hidden}, {K} runs of {N} "
            f"samples), but {gib(free)} is free{bound}, of which a sweep takes at most 80 %; use fewer "
            f"{setting('seeds')} or settings, a smaller {setting('n_samples')}, or a larger {setting('log_interval')}")


# ---- time ------------------------------------------------------------------------------------------

def estimate_seconds(plan: Plan, probe_networks: int = 256) -> float:
    """Seconds to train the plan, from a few timed steps of each group's shape on as many of its networks as
    :func:`_training_seconds` allows (``probe_networks`` at least), scaled to the group's size (the data are random;
    nothing is kept; torch's generator is left as it was), plus drawing every run's data (:func:`_setup_seconds`:
    10⁵ runs spend half a minute there)."""
    with torch.random.fork_rng(devices=[plan.device] if plan.device.type == "cuda" else []):
        return _setup_seconds(plan) + _training_seconds(plan, probe_networks)


def _setup_seconds(plan: Plan) -> float:
    """Seconds to draw every run's data set (each seed draws its own): a draw of the first run's timed for up to
    three more seeds, warm (:func:`make_plan` drew each setting's for the first seed), times the draws to come.
    Here, not when planning: only the printed estimate needs it."""
    seeds, first = plan.config.seeds, plan.runs[0].config
    times = []
    for seed in seeds[1:4]:
        start = time.perf_counter()
        load_split(TrainConfig(**{**first.as_dict(), "seed": seed}), plan.files.get(first.data))
        times.append(time.perf_counter() - start)
    draws = len({data_key(r.config) for r in plan.runs if r.seed == seeds[0]})  # the data settings, each seed's
    return (min(times) if times else 0.0) * draws * len(seeds)


def _training_seconds(plan: Plan, probe_networks: int, probe_units: int = 2**23) -> float:
    """The groups' steps timed as the trainer takes them (the fused pass asked directly, then the optimiser's
    step), on at least ``probe_networks`` networks and as many more as ``probe_units`` hidden-unit activations
    (networks × samples × units: the probe's memory, ~64 MB in float64) allow: a step's per-call cost is the same
    for 256 networks as for 2000, and scaled up with the work it made the estimate 2-4 times the training (888 s
    printed for 83 s of a sweep of 2000-network groups on 80 samples). Four steps of each group's probe: well under
    a second at the defaults."""
    from ..ensemble import TanhNetEnsemble
    from .group import make_optimizer, set_gradients

    total = 0.0
    for g in plan.groups:
        K = len(g.runs)
        Kp = min(K, max(probe_networks, probe_units // (max(g.batch_size, 1) * g.hidden)))
        dtype = getattr(torch, g.dtype)
        model = TanhNetEnsemble(Kp, D, g.hidden, device=plan.device, dtype=dtype)
        X = torch.rand(Kp, g.batch_size, D, device=plan.device, dtype=dtype)
        y = (X[..., :1] > 0.5).to(dtype)
        opt = make_optimizer(g.optimizer, model.parameters(), [r.config for r in g.runs[:Kp]])
        times = []
        for _ in range(4):
            start = time.perf_counter()
            set_gradients(model, X, y)
            opt.step()
            if plan.device.type == "cuda":
                torch.cuda.synchronize(plan.device)
            times.append(time.perf_counter() - start)
        step = min(times[1:]) * max(1.0, K / Kp)
        evaluation = step * (g.n_train + g.n_test) / g.batch_size / 2  # a forward pass over both sets
        total += plan.total_steps(g) * (step + evaluation / plan.config.log_interval)
    return total
