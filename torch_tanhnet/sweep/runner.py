"""The sweep behind ``scripts/sweep.py``: :func:`sweep` plans, trains group after group, and reports.

The loop, as :func:`sweep` reads::

    for group in plan.groups:                  # one ensemble per group, narrowest first
        trainer = GroupTrainer(group, ...)     # this process's share of the group's runs
        while trainer.step < trainer.total_steps:
            trainer.train_step()
            if trainer.log_due(): trainer.log()
            if stop requested or a checkpoint is due: save the whole sweep (and stop)
        save
    gather every process's groups on rank 0; write results.csv, sweep.json, TensorBoard, pictures

Under torchrun each process trains every world-size-th run of each group (a disjoint share, the
same on every start), alone: no collective runs while training. Rank 0 gathers the shares at the
end and writes everything; the results equal a one-process sweep's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from ..files import temporary_name
from ..training import checkpoint, setup, signals, writer_lock
from ..training.checkpoint import SHARES, CheckpointError, holds_sweep_files, sweep_hint
from ..training.config import ConfigError
from ..training.data import DataError, label_advice, scale_advice
from ..training.distributed import DistributedError
from ..training.hparams import SESSION_FILE
from ..training.setup import (
    check_empty_logdir,
    check_logdir,
    check_utf8_name,
    claim_logdir,
    missing_folders,
    resolve_device,
    take,
)
from ..training.signals import StopRequested, stop_on_signals
from ..training.wording import setting
from ..training.world import World
from . import state as checkpoints
from .config import SweepConfig
from .data import one_label_advice, one_label_files, one_label_runs
from .group import GroupResult, GroupTrainer
from .plan import Group, Plan, make_plan
from .results import Results, collect, write_csv, write_json

Gather = Callable[[object], list | None]
DRY = "sweep-dry-run-"  # the temporary folder of a dry run given no --logdir
_temporary: set[Path] = set()  # the dry-run folders this process made: the only ones remove_if_dry_run deletes
_claimed: set[Path] = set()  # the default folders prepare made: removed, if empty, when the sweep fails to start


@dataclass
class SweepResult:
    plan: Plan
    logdir: Path
    results: Results | None  # None when interrupted
    seconds: float  # training time, over every start of the sweep
    interrupted: bool = False
    already_complete: bool = False  # --resume of a finished sweep: nothing was trained
    groups: dict[int, GroupResult] | None = None  # every group's weights and metrics at each log step (rank 0)


def default_logdir(config: SweepConfig) -> Path:
    """``sweeps/<MMDD-HHMMSS>-<data>``, not yet made: time first, as train.py's runs are named, so that TensorBoard's
    short labels tell sweeps apart. Not under train.py's ``runs/``: TensorBoard's HParams tab reads one experiment
    per log dir (the first it finds), so a sweep beside train.py runs blanked the metrics of one or the other."""
    data = config.values.get("dataset", ["moons"]) if not config.values.get("data") else ["csv"]
    name = data[0] if len(data) == 1 else "mixed"
    return Path("sweeps") / f"{datetime.now().strftime('%m%d-%H%M%S')}-{name}"


def check_new_logdir(logdir: Path) -> None:
    """Refuse a folder that a new sweep cannot write, or whose files it could overwrite: it must be new or empty.

    A sweep writes results.csv, sweep.json, pictures, a folder per setting and TensorBoard files under fixed
    names; rather than guess which of a folder's files those could clash with, it writes only into a folder
    that holds nothing yet, so that nothing a user had there is ever replaced.
    """
    check_logdir(logdir)  # a file in the way, a read-only or full file system, a name too long: one line
    if checkpoints.holds_sweep(logdir):
        if holds_a_run(logdir):  # a train.py run's checkpoint.pt, which --resume could not continue
            try:
                checkpoint.load(logdir / "checkpoint.pt")
                what = "a train.py run (checkpoint.pt)"
            except CheckpointError:  # an empty or garbage file: no run's
                what = "a checkpoint.pt that no run or sweep wrote (unreadable)"
            raise ConfigError("logdir", f"{str(logdir)!r} holds {what}; a new sweep needs a new or empty "
                                        f"{setting('logdir')}")
        raise ConfigError("logdir", f"{str(logdir)!r} already holds a sweep: {sweep_hint(logdir)}, or choose "
                                    f"another {setting('logdir')}")
    check_empty_logdir(logdir, "a sweep")


def check_deepest(plan: Plan, logdir: Path) -> None:
    """Refuse a ``logdir`` under which the sweep's deepest file cannot be named (an HParams session file in
    seeds/<setting>/seed=<s>/, or in <setting>/ for a session a setting: a name past the system's PATH_MAX). With a
    --logdir of 4000 characters a sweep trained, wrote its results, then failed on that file with advice to
    --resume that could never pass. Reckoned from the names alone: a probe made and removed on the file system
    raced the other processes of a torchrun sweep, which took the folder for one moved away."""
    from .board import per_run_sessions  # (board imports TensorBoard: here, once a plan is made)

    folder = max(plan.folders, key=lambda name: len(os.fsencode(name)))
    if per_run_sessions(plan):
        deepest = logdir / "seeds" / folder / f"seed={max(plan.config.seeds)}" / SESSION_FILE
    else:
        deepest = logdir / folder / SESSION_FILE
    there = Path(os.path.abspath(logdir))
    while not os.path.isdir(there) and there != there.parent:  # the file system the names will be on
        there = there.parent
    try:
        limit = os.pathconf(there, "PC_PATH_MAX")  # bytes, with the closing NUL
    except (OSError, ValueError):
        return
    written = temporary_name(deepest)  # written first under its temporary name (files.replacing)
    if len(os.fsencode(written)) >= limit:
        raise ConfigError("logdir", f"{str(logdir)!r} is too long for the files a sweep writes in it (the deepest, "
                                    f"{deepest.relative_to(logdir)}, written first under a temporary name, makes a "
                                    f"name of {len(os.fsencode(written))} bytes, past the {limit - 1} this system "
                                    f"takes); choose a shorter {setting('logdir')}")


def holds_a_run(logdir: Path) -> bool:
    """Whether ``logdir``'s checkpoint.pt is a train.py run's: no sweep's files beside it, and not of a sweep's kind
    (sweep.json may have been removed)."""
    return (logdir / "checkpoint.pt").is_file() and not holds_sweep_files(logdir)


def share(group: Group, world: World) -> list:
    """This process's runs of ``group``: every world-size-th, from its rank on."""
    return group.runs[world.rank::world.size]


def prepare(config: SweepConfig, world: World | None = None, given: set[str] | None = None,
            device: torch.device | None = None) -> tuple[Plan, Path, dict]:
    """The plan, the log dir and the checkpoint state to start from (new, or read for --resume). ``config`` is left
    as it was: the plan's config (``plan.config``) is the one the sweep runs, its values plain and its logdir set."""
    world = world or World()
    config = dataclasses.replace(config)  # the caller's object keeps its values and its logdir (None: the default)
    config.validate()
    device = device or resolve_device(config.device)
    if config.dry_run and config.logdir is None:  # a dry run leaves nothing behind unless given a folder
        config.logdir = tempfile.mkdtemp(prefix=DRY)
        _temporary.add(Path(config.logdir))
    claim = config.logdir is None  # the default folder, made once the plan is known to fit (under torchrun by
    # rank 0, which sends its name to the others: their clocks may read another second)
    logdir = Path(config.logdir) if config.logdir else default_logdir(config)
    try:
        if logdir in _temporary:  # its own, which no other process holds: unwritable (a umask of 777) said as such,
            check_logdir(logdir, temporary=True)  # not as the lock's "cannot write", and removed below
        if world.is_main and not claim and os.path.isdir(logdir):  # a sweep still writing there (a --resume started
            writer_lock.hold(logdir)  # too soon) refuses this one; rank 0 holds it for the sweep, sweep() lets go
        check_utf8_name(logdir, logdir in _temporary, config.resume)
        if not config.resume and not claim and world.is_main:  # rank 0 alone: the others' checks would race it
            check_new_logdir(logdir)
        asked = None
        if config.resume:
            found = checkpoints.load(logdir, world.rank, world.size)
            given = {"values", *(f for f in config.as_dict() if f != "values")} if given is None else given
            asked = config.values.get("batch_size") if "values" in given else None
            config = checkpoints.resume_settings(config, found, given)
            config.validate()
        else:
            found = checkpoints.new(config, world.rank, world.size)
        plan = make_plan(config, device)
        if world.is_main and not claim:
            check_deepest(plan, logdir)
        checkpoints.check_batch_sizes(plan, asked, config.values.get("batch_size", [None]))  # None: train.py's
        check_data(plan, found, world)
        unscaled = False in config.values.get("standardize", [False])  # some runs train on the file's numbers
        for path, (X, y) in plan.files.items() if world.is_main else ():
            for advice in (unscaled and scale_advice(X, f"in {path!r}"), label_advice(y, f"in {path!r}")):
                if advice:
                    warnings.warn(advice, stacklevel=3)  # at the caller of sweep(), as train.py warns
    except BaseException:
        writer_lock.release(logdir)
        if logdir in _temporary:  # a refused dry run's temporary folder, made above: nothing left behind
            remove_temporary(logdir)
        raise
    if claim:
        if world.is_main:
            logdir = claim_logdir(default_logdir(config))  # made here, -2, -3 if taken: no other sweep can have it
            _claimed.add(logdir)
        logdir = Path(world.from_main(str(logdir)))
    config.logdir = str(logdir)
    return plan, logdir, found


def check_data(plan: Plan, found: dict, world: World) -> None:
    """Hash each --data file as the sweep read it (:attr:`Plan.files`) into ``found["data"]``; refuse, in one line,
    data that differ between the processes of a torchrun launch, or from a resumed checkpoint's (a checkpoint older
    than these hashes was compared by the files' names, as before)."""
    given = [p for p in plan.config.values.get("data") or [] if p is not None and p in plan.files]  # read: a random
    # sweep may draw no setting of a file given
    data = [[p, setup.data_fingerprint(*plan.files[p])] for p in given]
    if data and not world.agree(hashlib.sha256("".join(h for _, h in data).encode()).hexdigest()):
        raise DataError(f"the {world.size} processes read different data from {setting('data')} {' '.join(given)} "
                        "(was a file changed while they started?); every process must read the same data")
    saved = found.get("data") or []
    if plan.config.resume and saved:
        if len(saved) != len(data):
            raise ConfigError("data", f"{given!r} differs from the checkpoint's {[p for p, _ in saved]!r}; a resumed "
                                      "sweep keeps its data")
        for (path, h), (before, h_before) in zip(data, saved):
            if h != h_before:
                named = "" if path == before else f" ({before!r})"
                raise ConfigError("data", f"the data in {path!r} differ from the checkpoint's{named}; a resumed "
                                          "sweep keeps its data")
        named = list(plan.config.values["data"])  # the whole list, also the files a random sweep did not draw
        if named != found["config"]["values"].get("data"):  # the same files, named another way: saved as named now
            found["config"] = {**found["config"], "values": {**found["config"]["values"], "data": named}}
    found["data"] = data


def sweep(config: SweepConfig, world: World | None = None, given: set[str] | None = None,
          device: torch.device | None = None, gather: Gather | None = None,
          prepared: tuple[Plan, Path, dict] | None = None, on_group: Callable[[Group], None] | None = None
          ) -> SweepResult | None:
    """Train every run of the sweep; returns the result on rank 0, None on the other processes (every process
    returns an interrupted result when a signal stopped it).

    ``given`` names the settings the user set explicitly (None: all), for ``--resume``.
    ``prepared``: what :func:`prepare` returned (the CLI prints the plan between the two).
    Raises ConfigError, DataError, CheckpointError on bad settings (before any training).
    """
    world = world or World()
    plan, logdir, found = prepared or prepare(config, world, given, device)
    held = Path(os.path.abspath(logdir))  # let go by this name, whatever os.chdir does meanwhile
    try:
        return _sweep(plan, logdir, found, world, gather, on_group)
    finally:
        writer_lock.release(held)  # held by rank 0 since prepare
        remove_if_dry_run(plan, logdir)  # however it ended: a dry run keeps nothing (a failure left its folder)


def _sweep(plan: Plan, logdir: Path, found: dict, world: World, gather: Gather | None,
           on_group: Callable[[Group], None] | None) -> SweepResult | None:
    config = plan.config
    mine = {g.index: [r.index for r in (g.runs if found["complete"] else share(g, world))] for g in plan.groups}
    checkpoints.check_plan(found, plan, mine, checkpoints.path(logdir, found["rank"], found["size"]))
    if found["complete"]:
        groups = {int(g): GroupResult.from_dict(r) for g, r in found["groups"].items()}
        with one_thread():
            results = collect(plan, groups, config.solved_at)
        return SweepResult(plan, logdir, results, found["seconds"], already_complete=True, groups=groups)
    started, before, done = time.perf_counter(), found["seconds"], found["groups"]
    last_save = [-float("inf")]
    made = missing_folders(logdir) + ([logdir] if logdir in _claimed else [])  # deepest first
    _claimed.discard(logdir)
    taken = False  # sweep.json created by this sweep: removed again if it stops before its first checkpoint
    watch = None  # the folder as the sweep began in it: renamed while it ran, it never writes by that name again
    try:
        if world.is_main:
            logdir.mkdir(parents=True, exist_ok=True)
            writer_lock.hold(logdir)  # held since prepare, unless the folder was new
            watch = writer_lock.Watch(logdir)
            if not config.resume:
                take(logdir / "sweep.json", "sweep")
                taken = True
            write_json(plan, logdir / "sweep.json")
        watch = watch or writer_lock.Watch(logdir)  # another process: from its first save (the folder may be new)
        return _train(plan, logdir, found, world, gather, on_group, started, before, done, last_save, watch)
    except BaseException:
        # nothing of a sweep that stopped before its first checkpoint blocks the next; but a folder renamed meanwhile
        # is left alone, whatever stopped the sweep: its names lead to another folder now, whose files discard()
        # would remove
        if taken and last_save[0] == -float("inf") and not (watch is not None and watch.moved()):
            discard(logdir, made)
        raise


def discard(logdir: Path, made: list[Path]) -> None:
    """Remove what a new sweep wrote before its first checkpoint (sweep.json, the folders it made, if empty), so
    that the folder is as it was and a next start is not refused; what cannot be removed stays."""
    try:
        (logdir / "sweep.json").unlink(missing_ok=True)
    except OSError:
        pass
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            break


def _train(plan: Plan, logdir: Path, found: dict, world: World, gather: Gather | None,
           on_group: Callable[[Group], None] | None, started: float, before: float, done: dict, last_save: list,
           watch: writer_lock.Watch) -> SweepResult | None:
    """The part of :func:`sweep` after sweep.json is written: every group, then :func:`finish` (``watch``: the
    folder, checked before each write)."""
    config = plan.config
    mine = [(g, share(g, world)) for g in plan.groups]
    bar = _bar(plan, mine, found, config.progress and world.is_main)
    one_label: dict = {"trained": [], "tested": [], "checked": 0}  # runs whose split holds one label (one_label_runs)
    whole = one_label_files(plan.files)  # once, not at every group

    def save(current: dict | None) -> None:
        found["current"], found["seconds"] = current, before + time.perf_counter() - started
        watch.check()
        checkpoints.save(found, logdir)
        last_save[0] = time.perf_counter()

    def save_due(trainer: GroupTrainer) -> bool:
        """At every checkpoint_interval-th epoch, unless the last save was under checkpoint_seconds ago: a
        checkpoint holds every run's metrics so far, so a big sweep saving often would mostly save."""
        return (trainer.epoch_ended() and trainer.epoch % config.checkpoint_interval == 0
                and time.perf_counter() - last_save[0] >= config.checkpoint_seconds)

    try:
        with stop_on_signals() as flag:
            for group, runs in mine:
                if group.index in done or not runs:
                    continue
                if on_group is not None:
                    on_group(group)
                current = found["current"] if found["current"] and found["current"]["group"] == group.index else None
                try:
                    trainer = GroupTrainer(group, runs, plan.log_steps(group), plan.total_steps(group), plan.device,
                                           files=plan.files, check=flag.raise_if_requested)  # files as planned
                except StopRequested:  # while a large group's data were drawn: the checkpoint as it stood
                    save(found["current"])
                    return SweepResult(plan, logdir, None, found["seconds"], interrupted=True)
                one_label_runs(runs, trainer.data, whole, one_label)
                if current is not None:
                    try:
                        trainer.load_state_dict(current)
                    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
                        where = checkpoints.path(logdir, found["rank"], found["size"])
                        why = checkpoint.load_failure(e)[:240]
                        raise CheckpointError(f"checkpoint {str(where)!r} holds a group in training that does not "
                                              f"fit it ({why}; hand-edited?); it cannot be resumed") from None
                bar.set_description(f"hidden {group.hidden}, {len(runs)} runs", refresh=False)
                shown = trainer.step
                while trainer.step < trainer.total_steps:
                    trainer.train_step()
                    if trainer.log_due():
                        trainer.log()
                        bar.update(trainer.step - shown)
                        shown = trainer.step
                    if flag.requested:  # Ctrl-C or SIGTERM: save where we are and stop
                        save({"group": group.index, **trainer.state_dict()})
                        return SweepResult(plan, logdir, None, found["seconds"], interrupted=True)
                    if save_due(trainer):
                        save({"group": group.index, **trainer.state_dict()})
                with one_thread():  # the Hessians, in cache-sized batches of networks (metrics.CHUNK)
                    done[group.index] = trainer.result().as_dict()
                save(None)
    finally:
        bar.close()
    if world.is_main and (advice := one_label_advice(one_label, share=world.size > 1)):
        warnings.warn(advice, stacklevel=4)  # at the caller of sweep()
    return finish(plan, logdir, found, world, gather, watch)


def _bar(plan: Plan, mine: list, found: dict, show: bool):
    from tqdm.auto import tqdm

    total = sum(plan.total_steps(g) for g, runs in mine if runs)
    initial = sum(plan.total_steps(g) for g, runs in mine if runs and g.index in found["groups"])
    if found["current"]:
        initial += found["current"]["step"]
    show = show and sys.stderr is not None  # None: closed (2>&-)
    # disable=None: a bar on a terminal, none when stderr is a file or a pipe
    return tqdm(total=total, initial=initial, disable=None if show else True, unit="step", dynamic_ncols=True)


def merge(plan: Plan, shares: list[dict]) -> dict[int, GroupResult]:
    """Every process's groups (each a share of the runs) as whole groups, networks in run order."""
    out = {}
    for g in plan.groups:
        parts = [GroupResult.from_dict(s[g.index]) for s in shares if g.index in s]
        runs = [r for p in parts for r in p.runs]
        order = sorted(range(len(runs)), key=runs.__getitem__)
        out[g.index] = GroupResult(
            [runs[i] for i in order], {k: torch.cat([p.params[k] for p in parts])[order] for k in parts[0].params},
            torch.cat([p.history for p in parts], 1)[:, order], parts[0].log_steps,
            torch.cat([p.diverged_at for p in parts])[order],
            None if any(p.curvature is None for p in parts) else torch.cat([p.curvature for p in parts])[order])
    return out


@contextmanager
def one_thread():
    """Torch on one thread: the report's tensors are small (a setting's curves, a picture's pixels), and waking a
    second thread for each op costs more than it gives (on a loaded machine, ten times more)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def finish(plan: Plan, logdir: Path, found: dict, world: World, gather: Gather | None,
           watch: writer_lock.Watch | None = None) -> SweepResult | None:
    """Gather the shares on rank 0; there, collect the results and write every output (``watch``: the folder is
    still the sweep's, checked before each)."""
    try:
        shares = gather(found["groups"]) if gather is not None and world.size > 1 else [found["groups"]]
    except DistributedError:
        if not signals.late.requested:
            raise
        # a Ctrl-C reached this process after it had trained its share, waiting here for the others; they stopped
        # on it and left, which the gather saw as a process that failed. Its share is checkpointed: interrupted
        return SweepResult(plan, logdir, None, found["seconds"], interrupted=True)
    if not world.is_main:
        remove_if_dry_run(plan, logdir)
        return None
    from .board import write_board

    check = watch.check if watch is not None else lambda: None
    try:
        with one_thread():
            groups = merge(plan, shares)
            results = collect(plan, groups, plan.config.solved_at)
            check()
            write_csv(results.rows, logdir / "results.csv")
            if not (logdir / "sweep.json").exists():  # removed while it ran (it is written at the start): again
                write_json(plan, logdir / "sweep.json")
            check()
            write_board(plan, results, groups, logdir)
        final = {**checkpoints.new(plan.config, 0, 1, found.get("data")),
                 "groups": {g: r.as_dict() for g, r in groups.items()}, "complete": True, "seconds": found["seconds"]}
        check()
        checkpoints.save(final, logdir)
    except OSError as e:  # renamed while a write ran (the pictures take a while): a file not found under the old
        if not isinstance(e, writer_lock.FolderMoved):  # name says so (FolderMoved), rather than "nothing was kept"
            check()  # of a folder whose checkpoint went with it
        raise
    for p in logdir.glob(SHARES):  # the processes' checkpoints, now in checkpoint.pt
        p.unlink(missing_ok=True)
    remove_if_dry_run(plan, logdir)
    return SweepResult(plan, logdir, results, found["seconds"], groups=groups)


def remove_if_dry_run(plan: Plan, logdir: Path) -> None:
    """A dry run given no --logdir wrote into a temporary folder this process made (each process its own): remove
    it. Any other folder, whatever its name, is left alone."""
    if plan.config.dry_run and logdir in _temporary:
        remove_temporary(logdir)


def remove_temporary(logdir: Path) -> None:
    """Remove a dry-run folder this process made, made unreadable too (a umask of 777 made it mode 000, which
    rmtree could not list: the folder was left behind)."""
    _temporary.discard(logdir)
    try:
        os.chmod(logdir, 0o700)
    except OSError:
        pass
    shutil.rmtree(logdir, ignore_errors=True)
