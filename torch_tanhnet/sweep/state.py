"""The checkpoint of a whole sweep: finished groups' results, the group in training, written atomically.

One file per process: ``checkpoint.pt`` for a one-process sweep (and for any finished sweep),
``checkpoint.rank<r>-of-<w>.pt`` for process r of w under torchrun. A process killed at any moment
(SIGKILL included) leaves the previous checkpoint or the new one (:func:`training.checkpoint.save_atomic`);
``--resume`` continues from it, and the result equals an uninterrupted sweep's.
"""

from __future__ import annotations

from pathlib import Path

from ..training import checkpoint
from ..training.checkpoint import CheckpointError
from ..training.config import ConfigError
from .config import RESUMABLE, SweepConfig
from .space import DEFAULTS

KIND = "torch-tanhnet/sweep/1"
FINISHED = "checkpoint.pt"


def path(logdir: Path, rank: int, size: int) -> Path:
    return logdir / (FINISHED if size == 1 else f"checkpoint.rank{rank}-of-{size}.pt")


def new(config: SweepConfig, rank: int, size: int) -> dict:
    return {"kind": KIND, "config": config.as_dict(), "rank": rank, "size": size, "groups": {}, "current": None,
            "complete": False, "seconds": 0.0}


def save(state: dict, logdir: Path) -> None:
    checkpoint.save_atomic(state, path(logdir, state["rank"], state["size"]))


def load(logdir: Path, rank: int, size: int) -> dict:
    """This process's checkpoint, or the finished sweep's; CheckpointError when neither is there or fits."""
    mine, finished = path(logdir, rank, size), logdir / FINISHED
    for p in (mine, finished):
        if p.is_file():
            state = checkpoint.load(p)
            if state.get("kind") != KIND:
                raise CheckpointError(f"{str(p)!r} is not a sweep's checkpoint (a train.py run's?)")
            if state["complete"] or (state["rank"], state["size"]) == (rank, size):
                return state
            raise CheckpointError(f"the sweep in {str(logdir)!r} was checkpointed by {state['size']} process(es); "
                                  f"resume it with as many, not {size}")
    raise CheckpointError(f"no sweep checkpoint in {str(logdir)!r} (expected {mine.name})")


def holds_sweep(logdir: Path) -> bool:
    return (logdir / FINISHED).exists() or any(logdir.glob("checkpoint.rank*-of-*.pt"))


def resume_settings(config: SweepConfig, state: dict, given: set[str]) -> SweepConfig:
    """The sweep's saved settings, with the resumable ones the user gave; a change to any other is refused."""
    saved = SweepConfig.from_dict(state["config"])
    mine = config.as_dict()
    theirs = saved.as_dict()
    for name in sorted(given - RESUMABLE):
        if name == "values":
            for field, values in mine["values"].items():
                saved_values = theirs["values"].get(field, [DEFAULTS[field]])  # not given: train.py's default
                if values != saved_values:
                    raise ConfigError(f"argument --{field.replace('_', '-')}: {values!r} differs from the "
                                      f"checkpoint's {saved_values!r}; a resumed sweep keeps its settings")
        elif mine[name] != theirs[name]:
            raise ConfigError(f"argument --{name.replace('_', '-')}: {mine[name]!r} differs from the checkpoint's "
                              f"{theirs[name]!r}; a resumed sweep keeps its settings")
    override = (RESUMABLE & given) | {"resume", "logdir"}
    return SweepConfig.from_dict({**theirs, **{k: mine[k] for k in override}})


def network(logdir: str | Path, run: int):
    """Run ``run`` of the finished sweep in ``logdir``, its trained weights as a TanhNet."""
    from .group import GroupResult

    state = checkpoint.load(Path(logdir) / FINISHED)
    if state.get("kind") != KIND or not state["complete"]:
        raise CheckpointError(f"{str(logdir)!r} holds no finished sweep")
    for found in state["groups"].values():
        if run in found["runs"]:
            return GroupResult.from_dict(found).model()[found["runs"].index(run)]
    raise CheckpointError(f"the sweep in {str(logdir)!r} has no run {run}")
