"""The checkpoint of a whole sweep: finished groups' results, the group in training, written atomically.

One file per process: ``checkpoint.pt`` for a one-process sweep (and for any finished sweep),
``checkpoint.rank<r>-of-<w>.pt`` for process r of w under torchrun. A process killed at any moment
(SIGKILL included) leaves the previous checkpoint or the new one (:func:`training.checkpoint.save_atomic`);
``--resume`` continues from it, and the result equals an uninterrupted sweep's.
"""

from __future__ import annotations

import operator
import os
from pathlib import Path

import torch

from ..checks import short
from ..training import checkpoint
from ..training.checkpoint import CheckpointError
from ..training.config import ConfigError
from ..training.data import DEFAULT_NOISE
from ..training.wording import entry
from .config import RESUMABLE, SweepConfig
from .space import DEFAULTS

KIND = "torch-tanhnet/sweep/1"
FINISHED = "checkpoint.pt"


def path(logdir: Path, rank: int, size: int) -> Path:
    return logdir / FINISHED if size == 1 else checkpoint.share_path(logdir, rank, size)


def new(config: SweepConfig, rank: int, size: int, data: list | None = None) -> dict:
    """A new sweep's state; ``data``: each --data file as given and a hash of what it holds ([path, hash], in the
    order given), so that a resumed sweep can tell it reads the same data (None: no data files)."""
    return {"kind": KIND, "config": config.as_dict(), "rank": rank, "size": size, "groups": {}, "current": None,
            "complete": False, "seconds": 0.0, "data": data or []}


def save(state: dict, logdir: Path) -> None:
    checkpoint.save_atomic(state, path(logdir, state["rank"], state["size"]))


def load(logdir: Path, rank: int, size: int) -> dict:
    """This process's checkpoint, or the finished sweep's; CheckpointError when neither is there or fits."""
    mine, finished = path(logdir, rank, size), logdir / FINISHED
    if not os.path.lexists(logdir):
        raise CheckpointError(checkpoint.missing_folder(logdir, "sweep"))
    for p in (mine, finished):
        if p.is_file():
            state = checkpoint.load(p)
            if state.get("kind") != KIND:
                raise CheckpointError(f"{str(p)!r} is not a sweep's checkpoint (a train.py run's?)")
            check(state, p)
            if state["complete"] or (state["rank"], state["size"]) == (rank, size):
                return state
            raise CheckpointError(f"the sweep in {str(logdir)!r} was checkpointed by {state['size']} process(es); "
                                  f"resume it with as many, not {size}")
    sizes = sorted(set(checkpoint.share_sizes(logdir)) - {size})
    if sizes:  # another number of processes' shares: the sweep's, but this run cannot take them over
        raise CheckpointError(f"the sweep in {str(logdir)!r} was checkpointed by {sizes[0]} process(es); "
                              f"resume it with as many, not {size}")
    expected = next((f": {entry(p)} stands at {p.name}, not a file" for p in (mine, finished)
                     if entry(p) != "nothing"), f" (expected {mine.name})")  # a folder, a FIFO, a link to nothing
    raise CheckpointError(f"no sweep checkpoint in {str(logdir)!r}{expected}")


# what a sweep's checkpoint holds, and the kind of each part; and each finished group's parts
FIELDS = {"config": dict, "rank": int, "size": int, "groups": dict, "current": (dict, type(None)), "complete": bool,
          "seconds": (int, float)}
GROUP = {"runs": list, "params": dict, "history": torch.Tensor, "log_steps": list, "diverged_at": torch.Tensor}
CURRENT = {"group": int, "model": dict, "optimizer": dict, "step": int, "epoch": int, "batch": int, "logged": int,
           "history": torch.Tensor, "diverged_at": torch.Tensor}


def _kind(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("None" if k is type(None) else k.__name__ for k in kinds)



def check(state: dict, path: str | Path) -> None:
    """Raise CheckpointError unless ``state`` (a sweep's, from :func:`checkpoint.load`) has every part a resumed sweep
    or :func:`network` reads, each of the right kind and of shapes that agree: a hand-edited or damaged checkpoint
    is refused in one line, not met by a KeyError later (as :func:`training.checkpoint.check` does for a run)."""
    def refuse(what: str):
        raise CheckpointError(f"checkpoint {str(path)!r} {what} (hand-edited?); it cannot be resumed or read")

    def parts(d: dict, kinds: dict, where: str):
        for key, kind in kinds.items():
            if key not in d:
                refuse(f"lacks its {where}{key!r}")
            value = d[key]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                refuse(f"holds {type(value).__name__} {short(value)} as its {where}{key!r}, not {_kind(kind)}")
            if isinstance(value, (int, float)) and not value >= 0:
                refuse(f"holds {value} as its {where}{key!r}, not a number ≥ 0")

    parts(state, FIELDS, "")
    data = state.get("data", [])  # absent from a checkpoint older than it
    if not isinstance(data, list) or not all(isinstance(d, (list, tuple)) and len(d) == 2
                                             and all(isinstance(x, str) for x in d) for d in data):
        refuse(f"holds {short(data)} as its 'data', not [path, hash] pairs")
    if not state["rank"] < state["size"]:
        refuse(f"holds rank {state['rank']} of {state['size']} process(es)")
    try:  # the settings, as a sweep reads them
        SweepConfig.from_dict(state["config"]).validate()
    except (ConfigError, TypeError, KeyError, AttributeError, ValueError) as e:
        refuse(f"holds invalid settings ({type(e).__name__ if isinstance(e, (KeyError, AttributeError)) else e})")
    for index, group in state["groups"].items():
        where = f"group {index!r}'s "
        if isinstance(index, bool) or not isinstance(index, int) or not isinstance(group, dict):
            refuse(f"holds {type(group).__name__} {short(group)} as group {index!r}, not a dict under an integer")
        parts(group, GROUP, where)
        runs, params, k = group["runs"], group["params"], len(group["runs"])
        if not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in runs):
            refuse(f"holds {short(runs)} as its {where}'runs', not run numbers")
        U = params.get("U")
        if not isinstance(U, torch.Tensor) or U.dim() != 3 or U.shape[0] != k or U.shape[2] != 2:
            refuse(f"holds no weights U of {k} networks as its {where}'params'")
        h = U.shape[1]
        shapes = {"U": (k, h, 2), "b": (k, h), "W": (k, 1, h), "c": (k, 1)}
        for name, shape in shapes.items():
            t = params.get(name)
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != U.dtype:
                refuse(f"holds no {name} of shape {shape} in its {where}'params'")
        if set(params) != set(shapes):
            refuse(f"holds {sorted(params)} as its {where}'params', not U, b, W, c")
        # as GroupTrainer.result leaves them: metrics and curvature float64 (results.csv's numbers), log steps int64
        expected = {"history": ((len(group["log_steps"]), k, 4), torch.float64), "diverged_at": ((k,), torch.int64),
                    "curvature": ((k, 3), torch.float64)}
        for name, (shape, dtype) in expected.items():
            t = group.get(name)
            if name == "curvature" and t is None:
                continue  # a checkpoint older than it
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != dtype:
                found = (f"{type(t).__name__}" if not isinstance(t, torch.Tensor)
                         else f"{str(t.dtype).removeprefix('torch.')} of shape {tuple(t.shape)}")
                refuse(f"holds {found} as its {where}{name!r}, not {str(dtype).removeprefix('torch.')} of shape "
                       f"{shape}")
        steps = group["log_steps"]
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in steps) or steps != sorted(set(steps)) \
                or steps and steps[0] < 1:
            refuse(f"holds {short(steps)} as its {where}'log_steps', not increasing step numbers")
        # a run's diverged_at: 0 (never), or the log step that first found its loss not finite (GroupTrainer.log)
        wrong = [t for t in group["diverged_at"].tolist() if t != 0 and t not in set(steps)]
        if wrong:
            refuse(f"holds step {wrong[0]} in its {where}'diverged_at', not 0 (never) or one of its log steps")
    runs = [r for group in state["groups"].values() for r in group["runs"]]
    if len(set(runs)) != len(runs):
        refuse("holds a run in two places")
    if state["current"] is not None:
        parts(state["current"], CURRENT, "group in training's ")


def check_plan(state: dict, plan, mine: dict[int, list[int]], path: str | Path) -> None:
    """Raise CheckpointError unless the groups ``state`` holds are the plan's: each finished one with the runs
    ``mine`` gives it (group index -> run indices: this process's share, or all of a finished sweep's), of the
    plan's width, dtype and log steps; the group in training one of the plan's (:func:`check` passed)."""
    def refuse(what: str):
        raise CheckpointError(f"checkpoint {str(path)!r} {what}, not the plan's (hand-edited?); it cannot be resumed")

    groups = {g.index: g for g in plan.groups}
    if state["complete"] and set(state["groups"]) != set(groups):
        refuse(f"holds groups {sorted(state['groups'])}, not {sorted(groups)}")
    for index, found in state["groups"].items():
        if index not in groups:
            refuse(f"holds a group {index}")
        g, U = groups[index], found["params"]["U"]
        if found["runs"] != mine[index]:
            refuse(f"holds runs {short(found['runs'])} in group {index}")
        if (U.shape[1], str(U.dtype).removeprefix("torch.")) != (g.hidden, g.dtype):
            refuse(f"holds networks of {U.shape[1]} hidden units in {U.dtype} in group {index}")
        if found["log_steps"] != plan.log_steps(g):
            refuse(f"holds other log steps in group {index}")
    current = state["current"]
    if current is not None and (current["group"] not in groups or current["group"] in state["groups"]):
        refuse(f"holds group {current['group']} in training")


def holds_sweep(logdir: Path) -> bool:
    """Whether ``logdir`` holds a sweep's checkpoint: a file checkpoint.pt (a folder or a FIFO there is no sweep's:
    a new sweep is refused as for any folder not empty) or a torchrun process's share."""
    return (logdir / FINISHED).is_file() or any(logdir.glob(checkpoint.SHARES))


def _listed(value) -> str:
    """A setting's value in a message: a long list as its first and last items and its length (600 seeds made
    one line of 3000 characters)."""
    if isinstance(value, list) and len(value) > 6:
        return f"[{', '.join(map(repr, value[:3]))}, ..., {value[-1]!r}] ({len(value)} values)"
    return repr(value)


def _noises(values: list, saved: dict) -> list:
    """What the noise values mean for each of the saved sweep's data sets, in order: None is the data set's own."""
    datasets = saved["values"].get("dataset", [DEFAULTS["dataset"]])
    return [[DEFAULT_NOISE.get(d) if v is None else v for v in values] for d in datasets]


def _full_or_same(values: list, saved: list) -> bool:
    """Whether two lists of batch sizes differ only where one says the full batch (None) and the other a number,
    which may mean the same (:func:`check_batch_sizes` compares them against the training sets' sizes)."""
    return len(values) == len(saved) and all(a == b or (a is None) != (b is None) for a, b in zip(values, saved))


def check_batch_sizes(plan, asked: list | None, saved: list | None) -> None:
    """Refuse, as train.py's --resume does, batch sizes given on --resume that do not mean the saved ones: each
    setting's batch is min(B or n, n) of its n training samples (the plan knows n; the comparison of the lists
    alone took 400 for the full batch of 400 samples as another setting)."""
    if asked is None or saved is None or asked == saved:
        return
    for mine, theirs in zip(asked, saved):
        for g in plan.groups:
            n = g.n_train
            if any(plan.settings[s]["batch_size"] == theirs for s in g.settings) and \
                    min(mine or n, n) != min(theirs or n, n):
                raise ConfigError("batch_size", f"{_listed(asked)} differs from the checkpoint's {_listed(saved)} "
                                                f"(of {n} training samples); a resumed sweep keeps its settings")


def resume_settings(config: SweepConfig, state: dict, given: set[str]) -> SweepConfig:
    """The sweep's saved settings, with the resumable ones the user gave; a change to any other is refused."""
    saved = SweepConfig.from_dict(state["config"])
    mine = config.as_dict()
    theirs = saved.as_dict()
    hashed = bool(state.get("data"))  # the data files' contents are in the checkpoint: compared by those
    for name in sorted(given - RESUMABLE):
        if name == "values":
            for field, values in mine["values"].items():
                saved_values = theirs["values"].get(field, [DEFAULTS[field]])  # not given: train.py's default
                # the saved list of files, not its hashes: a random sweep hashes only the files it drew
                if field == "data" and hashed and len(values) == len(saved_values) and None not in values:
                    continue  # the same files named another way (/abs/a.csv for a.csv): runner.check_data decides
                if field == "noise" and _noises(values, theirs) == _noises(saved_values, theirs):
                    continue  # by what they mean: moons' noise None is 0.1, as train.py's --resume compares
                if field == "batch_size" and _full_or_same(values, saved_values):
                    continue  # 400 may be the full batch (None) of 400 training samples: check_batch_sizes decides
                if values != saved_values:
                    raise ConfigError(field, f"{_listed(values)} differs from the checkpoint's "
                                             f"{_listed(saved_values)}; a resumed sweep keeps its settings")
        elif mine[name] != theirs[name]:
            raise ConfigError(name, f"{_listed(mine[name])} differs from the checkpoint's {_listed(theirs[name])}; "
                                    "a resumed sweep keeps its settings")
    override = (RESUMABLE & given) | {"resume", "logdir"}
    out = {**theirs, **{k: mine[k] for k in override}}
    if "values" in given and hashed and "data" in mine["values"]:
        out["values"] = {**theirs["values"], "data": mine["values"]["data"]}  # the files as named now
    return SweepConfig.from_dict(out)


def network(logdir: str | Path, run: int):
    """Run ``run`` of the finished sweep in ``logdir``, its trained weights as a TanhNet."""
    given = run
    if not isinstance(logdir, (str, os.PathLike)):  # network(0, logdir) said "expected str, bytes or os.PathLike"
        raise TypeError(f"network(logdir, run): logdir must be the sweep's folder, got {type(logdir).__name__} "
                        f"{short(logdir)}")
    from .group import GroupResult

    state = checkpoint.load(Path(logdir) / FINISHED)
    if state.get("kind") != KIND:
        raise CheckpointError(f"{str(logdir)!r} holds no finished sweep")
    check(state, Path(logdir) / FINISHED)
    if not state["complete"]:
        raise CheckpointError(f"{str(logdir)!r} holds no finished sweep")
    try:  # a NumPy integer too (pandas.read_csv(results.csv).run[i]), or a 0-d integer tensor; not a bool
        bad = isinstance(run, bool) or isinstance(run, torch.Tensor) and (run.dtype == torch.bool or run.dim() != 0)
        run = None if bad else operator.index(run)
    except TypeError:
        run = None
    if run is None:
        raise CheckpointError(f"run must be an integer, got {given!r}")
    for found in state["groups"].values():
        if run in found["runs"]:
            return GroupResult.from_dict(found).model()[found["runs"].index(run)]
    raise CheckpointError(f"the sweep in {str(logdir)!r} has no run {run}")
