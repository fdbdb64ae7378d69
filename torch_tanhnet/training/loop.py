"""The training loop behind ``scripts/train.py``: :func:`train`, one step at a time.

The loop, as :func:`train` reads::

    if run.step == 0: run.log(); run.draw()  # the untrained network: where the curves and the pictures begin
    while run.step < run.total_steps:
        loss = run.train_step()          # ε on the next batch, backward, the optimiser's step
        stop = run.stop_requested(flag)  # Ctrl-C / SIGTERM, agreed by all processes
        if stop or run.log_due(): run.log()
        if run.draw_due(): run.draw()    # pictures at 0, 10, 20, 50, … then every image_interval (and the
        # Hessian's eigenvalues, unless cheap enough for every log)
        if run.save_due(): run.save()
        if stop: break
    run.save()

Everything a run holds (settings, data, model, optimiser, position, metrics, TensorBoard
output) is one :class:`Run`; building one (:meth:`Run.start`) makes or reads the data, builds
``TanhNet(2, hidden)`` under ``torch.manual_seed(seed)``, and restores the checkpoint when
resuming. The distributed share of each batch and its loss scale are :meth:`World.share`.
"""

from __future__ import annotations

import errno
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from ..files import reason, write_atomic
from ..module import TanhNet
from . import checkpoint, hparams, writer_lock
from .checkpoint import CheckpointError, SaveError
from .config import ConfigError, TrainConfig
from .data import DataError, Split, label_advice, scale_advice, unstandardised
from .logger import Logger
from .metrics import TrainingDiverged, accuracies, check_finite, curvature, curvature_at_every_log, measure
from .setup import (
    check_data_source,
    check_initial_weights,
    check_logdir,
    check_memory,
    check_new_logdir,
    check_optimizer_settings,
    check_utf8_name,
    claim_logdir,
    default_logdir,
    epoch_order,
    fingerprint,
    load_split,
    make_optimizer,
    missing_folders,
    optimizer_settings_differ,
    out_of_memory,
    resolve_device,
    resume_settings,
    scale_initial_weights,
    take,
)
from .signals import StopFlag, check_received, stop_on_signals
from .wording import setting
from .world import World

Tensor = torch.Tensor
__all__ = ["Run", "TrainResult", "TrainingDiverged", "World", "train"]


@dataclass
class TrainResult:
    model: TanhNet
    logdir: Path
    metrics: dict[str, float]  # the last logged scalars
    global_step: int
    epoch: int
    seconds: float
    steps_this_run: int
    interrupted: bool = False
    history: list[dict[str, float]] = field(default_factory=list)  # every logged row, from step 0 (no gradients)
    kept: bool = True  # False: a dry run without a logdir, whose temporary folder is gone
    already_done: bool = False  # resumed at or past its total epochs: nothing trained, nothing written

    @property
    def steps_per_second(self) -> float:
        return self.steps_this_run / self.seconds if self.seconds > 0 else float("nan")


class Run:
    """One training run's state and the parts of a step; :func:`train` drives it."""

    def __init__(self, config: TrainConfig, world: World, device: torch.device, logdir: Path, data: Split,
                 data_hash: str, model: TanhNet, optimizer: torch.optim.Optimizer, state: dict | None,
                 wrap: Callable[[TanhNet], torch.nn.Module] | None) -> None:
        self.config, self.world, self.device, self.logdir = config, world, device, logdir
        self.data, self.data_hash = data, data_hash  # data_hash: setup.fingerprint(data)
        self.X_raw = unstandardised(data.X_train, data.mean, data.std)  # the points as given, for the pictures
        self.dev = data.to(device, getattr(torch, config.dtype))
        self.model, self.optimizer = model, optimizer
        self.loss_of = wrap(model) if wrap is not None else model.loss
        n = self.n_train = self.dev.X_train.shape[0]
        self.batch_size = min(config.batch_size or n, n)
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        # the Hessian's eigenvalues at every scalar log where that is cheap, else at the picture steps
        self.curvature_every_log = curvature_at_every_log(n, model)
        # position: optimiser steps taken, epochs finished, batches taken of the current epoch
        self.step, self.epoch, self.next_batch = 0, 0, 0
        self.metrics: dict[str, float] = {}
        if state is not None:
            self.restore(state)
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.dry_run:
            self.total_steps = min(self.total_steps, self.step + 5)
        # a resumed run already at (or past) its total: nothing to do, and nothing is written
        self.done = state is not None and self.step >= self.total_steps
        self.history: list[dict[str, float]] = []
        self.closed = False
        self.scratch: tempfile.TemporaryDirectory | None = None  # a dry run's folder, removed by close()
        self.claim = False  # the default folder: made by open() under a name no other run holds
        # what open() made, for discard(): folders (deepest first), files, and files replaced (with their bytes)
        self.made: list[Path] = []
        self.created: list[Path] = []
        self.replaced: dict[Path, bytes] = {}
        self.steps_this_run, self.epoch_ended = 0, False
        self.saved = False  # a checkpoint written by this run: from then on an error leaves the folder resumable
        self.watch: writer_lock.Watch | None = None  # the folder as open() found it
        self.moved_away = False  # its folder was renamed while it ran (found when it stopped)
        self._order: tuple[int, Tensor | None] | None = None  # (epoch, its sample order)
        self._stepping, self._since_log = 0.0, 0  # seconds in train_step since the last log, and its steps
        self.resumed = state is not None
        self.writes = world.is_main and not self.done
        self.logger = Logger(logdir, False, None, model)  # writes nothing: open() opens the real one
        from tqdm.auto import tqdm

        show = config.progress and self.writes and sys.stderr is not None  # None: closed (2>&-)
        # disable=None: a bar on a terminal, none when stderr is a file or a pipe
        self.bar = tqdm(total=self.total_steps, initial=self.step, disable=None if show else True, unit="step",
                        dynamic_ncols=True)

    @classmethod
    def start(cls, config: TrainConfig, world: World | None = None, given: set[str] | None = None,
              wrap: Callable[[TanhNet], torch.nn.Module] | None = None, device: torch.device | None = None) -> "Run":
        """A new run, or the one in ``config.logdir`` resumed; see :func:`train` for the arguments."""
        world = world or World()
        config.validate()
        device = device or resolve_device(config.device)
        scratch, claim = None, False
        if config.logdir:
            logdir = Path(config.logdir)
        elif config.dry_run:  # a dry run keeps nothing unless told where: a temporary folder, removed by close()
            scratch = tempfile.TemporaryDirectory(prefix="torch-tanhnet-dry-run-")
            logdir = Path(scratch.name)
        else:  # claimed (made under a name no other run holds) by open(), once the run is known to start
            logdir, claim = default_logdir(config), True
        try:
            check_utf8_name(logdir, scratch is not None, config.resume)
            try:
                run = cls._build(config, world, given, wrap, device, logdir, claim)
            except BaseException:
                writer_lock.release(logdir)
                raise
            run.scratch, run.claim = scratch, claim and world.is_main
            try:
                run.open()
            except BaseException:
                run.discard()
                raise
        except OSError as e:  # the data's and the checkpoint's own errors are DataError and CheckpointError
            if scratch is not None:
                scratch.cleanup()
            where = os.fsdecode(e.filename) if e.filename else str(logdir)
            kept = "its folder is as it was before" if config.resume else "nothing of it was kept"
            what = f"cannot open {where!r}" if e.errno == errno.EMFILE else f"cannot save the run's files in {where!r}"
            raise SaveError(f"{what}: {_why(e)} ({kept})") from None
        except Exception as e:  # out of memory, else raised
            if scratch is not None:
                scratch.cleanup()
            if (short := out_of_memory(e)) is not None:
                raise short from None
            raise
        except BaseException:
            if scratch is not None:
                scratch.cleanup()
            raise
        return run

    @classmethod
    def _build(cls, config: TrainConfig, world: World, given: set[str] | None,
               wrap: Callable[[TanhNet], torch.nn.Module] | None, device: torch.device, logdir: Path,
               claim: bool = False) -> "Run":
        unwritable = None  # a finished run resumed on read-only storage writes nothing: refused only if it would
        if world.is_main and not claim:  # rank 0 alone: the others' checks would race its first writes
            try:
                check_logdir(logdir, temporary=config.dry_run and not config.logdir)  # before anything is
                # read or trained: an unusable folder is one line now
            except ConfigError as e:
                if not (config.resume and os.path.isdir(logdir)):
                    raise
                unwritable = e
            if os.path.isdir(logdir):  # a run still writing there (a --resume started too soon) refuses this one
                writer_lock.hold(logdir)
            if not config.resume:
                check_new_logdir(logdir)
        check_data_source(config, given)
        check_optimizer_settings(config, given)
        state, asked = None, config
        if config.resume:
            typed = given
            # from Python every setting counts as given; the command line says which ones the user typed
            given = set(TrainConfig.__dataclass_fields__) if given is None else given
            config, state = resume_settings(config, logdir, given)
            if config.data is not None:  # a built-in data set's setting beside the run's --data: as for a new run
                check_data_source(replace(asked, data=config.data), typed)
        check_memory(config, device)  # before the data are made: --n-samples 10**14 is one line, not a MemoryError
        data = load_split(config)
        data_hash = fingerprint(data)
        if not world.agree(data_hash, device):  # under torchrun: every process must train on the same data
            raise DataError(f"the {world.size} processes read different data"
                            + (f" from {config.data!r} (was it changed while they started?)" if config.data else "")
                            + "; every process must read the same data")
        n = data.X_train.shape[0]
        used = [min(size or n, n) for size in (asked.batch_size, config.batch_size)]  # as a step uses them
        if state is not None and "batch_size" in given and used[0] != used[1]:
            raise ConfigError("batch_size", f"{asked.batch_size!r} differs from the checkpoint's {config.batch_size!r} "
                                            f"(of {n} training samples); a resumed run keeps its settings")
        advise = world.is_main and (state is None or state["data_fingerprint"] == data_hash)  # other data: refused
        if not config.standardize and advise and (advice := scale_advice(data.X_train)):  # below, not advised on
            warnings.warn(advice, stacklevel=4)  # at the caller of train()
        if advise and (advice := label_advice(data.y_train, "of the training set")
                              or label_advice(data.y_test, "of the test set", tested=True)):
            warnings.warn(advice, stacklevel=4)
        torch.manual_seed(config.seed)
        model = TanhNet(2, config.hidden, device=device, dtype=getattr(torch, config.dtype))
        scale_initial_weights(model, config.init_scale)
        check_initial_weights(model, data, config)
        run = cls(config, world, device, logdir, data, data_hash, model, make_optimizer(config, model.parameters()),
                  state, wrap)
        if unwritable is not None and not run.done:
            raise unwritable
        return run

    def open(self) -> None:
        """Make the run's folder (the default one claimed under a name no other run holds) and write its first
        files: the HParams tab's, TensorBoard's events (the graph of a new run). Each is recorded as it is made,
        so that :meth:`discard` can remove exactly what this run made, even after an open cut short."""
        if not self.writes:
            return
        logdir = self.logdir
        if self.claim:
            missing = missing_folders(logdir.parent)
            self.logdir = logdir = claim_logdir(logdir)
            self.made = [logdir, *missing]
        else:
            self.made = missing_folders(logdir)
            logdir.mkdir(parents=True, exist_ok=True)
        writer_lock.hold(logdir)  # held from _build on, unless the folder was new
        self.watch = writer_lock.Watch(logdir)  # renamed while the run goes on: it stops, not making the name again
        checkpoint.remove_stale_temporaries(logdir / "checkpoint.pt")
        if not self.resumed:
            take(logdir / hparams.CONFIG_FILE, "run")  # one of two runs started at once into this folder goes on
            self.created.append(logdir / hparams.CONFIG_FILE)
        # the HParams tab: this run's settings (a resumed run's replace the first part's), metrics from its scalars
        for name in (hparams.CONFIG_FILE, hparams.SESSION_FILE):
            path = logdir / name
            if path in self.created:
                continue
            if path.is_file():
                self.replaced[path] = path.read_bytes()
            else:
                self.created.append(path)
        hparams.write_config(logdir)
        settings = hparams.values(self.config, self.batch_size)
        hparams.write_session(logdir, settings, hparams.group_name(settings))
        before = set(logdir.glob("events.out.tfevents.*"))
        try:
            self.logger = Logger(logdir, True, purge_step=self.step + 1 if self.resumed else None, model=self.model,
                                 watch=self.watch)
        finally:
            self.created += sorted(set(logdir.glob("events.out.tfevents.*")) - before - set(self.created))
        if not self.resumed:
            self.logger.graph(self.model)

    def discard(self) -> None:
        """Undo :meth:`open` for a run stopped before its first step: remove the files it made, put back the
        HParams files a resumed run replaced, and remove the folders it made, if empty. Nothing that was there
        before is removed; what cannot be undone (a full disk, say) stays. A folder renamed while the run went on
        is left as it is: its names now lead to another folder, whose files they would remove."""
        moved = self.moved_away or (self.watch is not None and self.watch.moved())  # before close() removes a dry
        try:  # run's temporary folder, which would then read as moved away
            self.close()
        except OSError:
            pass
        if moved:
            self.moved_away = True
            return
        for path in self.created:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        for path, data in self.replaced.items():
            try:
                write_atomic(path, data)
            except OSError:
                pass
        for folder in self.made:  # deepest first; one that holds anything (another run's, say) stays
            try:
                folder.rmdir()
            except OSError:
                break
        self.created, self.replaced, self.made = [], {}, []

    def restore(self, state: dict) -> None:
        """Parameters, optimiser, position, random state and metrics from a checkpoint that
        :func:`~.checkpoint.check` passed; CheckpointError where its contents do not fit this run."""
        path = str(self.logdir / "checkpoint.pt")
        if state["data_fingerprint"] != self.data_hash:
            why = (f"a changed {setting('data')} file?" if self.config.data
                   else "drawn by another version of the data set's generator?")
            raise ConfigError("resume", f"the data differ from the checkpoint's ({why})")
        step, epoch, batch = state["global_step"], state["epoch"], state["batch"]
        if batch >= self.steps_per_epoch or step != epoch * self.steps_per_epoch + batch:
            raise CheckpointError(f"checkpoint {path!r}: its position (step {step}, epoch {epoch}, batch {batch}) "
                                  f"does not fit {self.steps_per_epoch} steps an epoch (hand-edited?); it cannot be "
                                  "resumed")
        # the optimizer's lr, momentum, ... as saved must be those its settings make: it trains on as loaded
        differs = optimizer_settings_differ(self.optimizer, state["optimizer"].get("param_groups"))
        if differs is not None:
            raise CheckpointError(f"checkpoint {path!r}: its optimizer's {differs} (hand-edited?); it cannot be "
                                  "resumed")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            for group in self.optimizer.param_groups:  # momenta of the parameters' shapes, not merely loadable
                for p in group["params"]:
                    for value in self.optimizer.state.get(p, {}).values():
                        if isinstance(value, Tensor) and value.dim() > 0 and value.shape != p.shape:
                            raise ValueError(f"optimizer state of shape {tuple(value.shape)} for a parameter of "
                                             f"shape {tuple(p.shape)}")
            # a run stops at a non-finite loss, gradient or weight before saving: such a checkpoint was edited or
            # damaged, and resumed it diverged at once with advice to lower the learning rate. The optimizer's state
            # may hold inf (Adam's second moment overflows where a gradient passes 1e19 in float32), never NaN
            for name, t in self.model.state_dict().items():
                if not bool(torch.isfinite(t).all()):
                    raise ValueError(f"its {name} holds NaN or infinite values, which no run saves: hand-edited?")
            for p_state in self.optimizer.state.values():
                for key, t in p_state.items():
                    if isinstance(t, Tensor) and t.is_floating_point() and bool(torch.isnan(t).any()):
                        raise ValueError(f"its optimizer's {key} holds NaN, which no run saves: hand-edited?")
            torch.set_rng_state(state["rng"]["torch"])
            metrics = {str(k): float(v) for k, v in state["metrics"].items()}
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
            raise CheckpointError(f"checkpoint {path!r} does not fit this run ({checkpoint.load_failure(e)}); "
                                  "it cannot be resumed") from None
        self.step, self.epoch, self.next_batch, self.metrics = step, epoch, batch, metrics

    # one step --------------------------------------------------------------------------------------

    def next_batch_rows(self) -> tuple[Tensor, Tensor]:
        """X and y of the next batch: the whole training set, or the epoch's seeded order's next slice."""
        if self.batch_size == self.n_train:
            return self.dev.X_train, self.dev.y_train
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, epoch_order(self.config.seed, self.epoch, self.n_train))
        rows = self._order[1][self.next_batch * self.batch_size:(self.next_batch + 1) * self.batch_size]
        return self.dev.X_train[rows], self.dev.y_train[rows]

    def train_step(self) -> Tensor:
        """ε on the next batch (this process's share), backward, the optimiser's step, the finiteness check."""
        start = time.perf_counter()
        X, y = self.next_batch_rows()
        X, y, scale = self.world.share(X, y, X.shape[0])
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_of(X, y)
        if scale != 1:
            loss = loss * scale
        loss.backward()
        self.optimizer.step()
        check_finite(loss, self.model, self.step + 1, self.world)  # a device sync: the step's work is done
        self._stepping += time.perf_counter() - start
        self.step += 1
        self.steps_this_run += 1
        self._since_log += 1
        self.next_batch += 1
        self.epoch_ended = self.next_batch == self.steps_per_epoch
        if self.epoch_ended:
            self.epoch, self.next_batch = self.epoch + 1, 0
        self.bar.update(1)
        return loss

    # what is due after a step ---------------------------------------------------------------------

    def last_step(self) -> bool:
        return self.step == self.total_steps

    def log_due(self) -> bool:
        return self.step % self.config.log_interval == 0 or self.last_step()

    def draw_due(self) -> bool:
        return picture_due(self.step, self.config.image_interval) or self.last_step()

    def save_due(self) -> bool:
        return self.epoch_ended and self.epoch % self.config.checkpoint_interval == 0

    def stop_requested(self, flag: StopFlag) -> bool:
        """Any process's signal stops every process, at the same step (under torchrun, checked when logging)."""
        if self.world.size == 1:
            return flag.requested
        if not self.log_due():
            return False
        return self.world.sum(torch.tensor([float(flag.requested)], device=self.device)).item() > 0

    def log(self) -> None:
        # run/step_ms: the steps alone; the time between two logs also held pictures and Hessians (17-20 times the
        # steps' time after a picture step, at the defaults), metrics and checkpoints. None at step 0: no step yet
        step_seconds = self._stepping / self._since_log if self._since_log else None
        self._stepping, self._since_log = 0.0, 0
        self.metrics = measure(self.model, self.dev, self.world, self.optimizer.param_groups[0]["lr"], step_seconds)
        if self.curvature_every_log and self.world.is_main:
            self.metrics.update(curvature(self.model, self.dev.X_train, self.dev.y_train))
        self.logger.scalars(self.metrics, self.step, model=self.model)
        self.history.append({"step": self.step, **self.metrics})
        self.bar.set_postfix(loss=f"{self.metrics['loss/train']:.4f}", acc=f"{self.metrics['accuracy/train']:.3f}",
                             refresh=False)

    def draw(self) -> None:
        """The pictures of this step, captioned with its accuracies (measured afresh when not logged at it),
        and the Hessian's extreme eigenvalues."""
        logged = bool(self.history) and self.history[-1]["step"] == self.step
        if logged:
            train_acc, test_acc = self.metrics["accuracy/train"], self.metrics["accuracy/test"]
        else:
            train_acc, test_acc = accuracies(self.model, self.dev, self.world)
        title = f"step {self.step}" + (" (untrained)" if self.step == 0 else "")
        self.logger.pictures(self.model, self.data, self.X_raw, self.step, title,
                             f"accuracy  train {train_acc:.3f}  test {test_acc:.3f}")
        if self.world.is_main and not (logged and self.curvature_every_log):  # the Hessian of ε on the training
            # set: its extreme eigenvalues (log() gave them at this step where they are cheap)
            values = curvature(self.model, self.dev.X_train, self.dev.y_train)
            self.logger.scalars(values, self.step)
            self.metrics.update(values)

    def save(self) -> None:
        """An atomic checkpoint of everything a resumed run needs (main process; the others wait)."""
        if self.world.is_main:
            path = self.logdir / "checkpoint.pt"
            # what was logged up to this step reaches the events file first: a run killed (SIGKILL) after the
            # checkpoint resumes past this step, and what TensorBoard's thread still held would be lost for good
            self.logger.flush()
            try:
                if self.watch is not None:
                    self.watch.check()
                checkpoint.save_atomic({
                    "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                    "optimizer": self.optimizer.state_dict(), "global_step": self.step, "epoch": self.epoch,
                    "batch": self.next_batch, "rng": {"torch": torch.get_rng_state()},
                    "config": self.config.run_settings(), "data_fingerprint": self.data_hash, "mean": self.data.mean,
                    "std": self.data.std, "metrics": self.metrics,
                }, path)
            except OSError as e:
                # found here before TensorBoard's writer met it (either may, by timing): what is kept is the same
                self.moved_away = self.moved_away or isinstance(e, writer_lock.FolderMoved)
                raise SaveError(f"cannot save the checkpoint {str(path)!r}: {_why(e)} ({_kept(self)})"
                                ) from None
        self.world.wait()
        self.saved = True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bar.close()
            try:
                self.logger.close()  # raises what writing the events met (a full disk), once
            finally:
                # by the absolute name it was taken by, whatever os.chdir did meanwhile
                writer_lock.release(Path(self.watch.absolute) if self.watch is not None else self.logdir)
                if self.scratch is not None:
                    self.scratch.cleanup()


def _why(e: OSError) -> str:
    """An OSError's reason, within a SaveError's text (a moved folder's names settings, as SaveError does)."""
    return e.text if isinstance(e, writer_lock.FolderMoved) else reason(e)


def _kept(run: Run) -> str:
    """What of ``run`` stays after an error, as the end of its message."""
    if run.moved_away:
        return "the moved folder is left as it was"
    if run.saved or run.resumed:
        return "the last checkpoint is kept as it was"
    return "it had no checkpoint yet: nothing of it was kept"  # train() removes what it wrote


def picture_due(step: int, interval: int) -> bool:
    """Steps 0, 10, 20, 50, 100, 200, 500, 1000, … (1, 2, 5 times a power of ten) below ``interval``,
    then every ``interval``: early pictures while the boundary forms, then evenly spaced ones."""
    if step % interval == 0:
        return True
    if step >= interval or step < 10:
        return False
    while step % 10 == 0:
        step //= 10
    return step in (1, 2, 5)


def train(config: TrainConfig, world: World | None = None, given: set[str] | None = None,
          wrap: Callable[[TanhNet], torch.nn.Module] | None = None, device: torch.device | None = None) -> TrainResult:
    """Train TanhNet as ``config`` says.

    ``given`` names the settings the user set explicitly (None: all of them); a resumed run
    takes the others from its checkpoint and refuses to change those that define the run.
    ``wrap`` turns the model into the module whose ``forward(X, y)`` returns the loss
    (DistributedDataParallel under torchrun); None calls ``model.loss``.
    ``device`` overrides ``config.device`` (a torchrun process's own GPU).
    A dry run (``config.dry_run``) takes 5 steps; without a ``logdir`` it writes into a temporary
    folder removed at the end, so that nothing is left behind (``TrainResult.kept`` is False).
    Raises ConfigError, DataError, CheckpointError on bad settings, TrainingDiverged
    when the loss or a gradient stops being finite, SaveError when the run's folder cannot be
    written (the previous checkpoint stays whole), OutOfMemory when memory runs out.
    """
    if not isinstance(config, TrainConfig):  # a dict said "'dict' object has no attribute 'validate'"
        raise TypeError(f"train takes a TrainConfig, got {type(config).__name__}"
                        + (" (TrainConfig(**settings) makes one)" if isinstance(config, dict) else ""))
    run = Run.start(config, world, given, wrap, device)
    try:
        try:
            return _train(run, time.perf_counter())
        except BaseException:
            run.moved_away = run.watch is not None and run.watch.moved()  # before discard() removes anything
            # a new run that stops before its first checkpoint (Ctrl-C before the loop, a divergence, a full disk)
            # could be neither resumed nor run again into its folder: what it wrote goes (its folder, when it made
            # it). A resumed run stopped before its first step is put back as it was; after it, its checkpoint
            # stays, and its next resume replaces the events written since
            if not (run.resumed or run.saved) or run.steps_this_run == 0:
                run.discard()
            raise
    except TrainingDiverged as e:
        # a step too long: the learning rate's, or a weight decay's pull (θ ← θ − η λ θ overshoots once η λ > 2)
        decay = f" or {setting('weight_decay')}" if run.config.weight_decay else ""
        advice = f"try a smaller {setting('lr')}{decay}"
        kept = "the last good checkpoint is kept" if run.saved or run.resumed else _kept(run)
        raise TrainingDiverged(f"{e.text}; {advice} ({kept})") from None
    except OSError as e:  # writing TensorBoard's events (the checkpoint's own errors are SaveErrors already)
        where = os.fsdecode(e.filename) if e.filename else str(run.logdir)  # bytes from TensorBoard's writer
        # too many open files: whatever it opened (a module imported late, a picture's font), not only the events
        what = f"cannot open {where!r}" if e.errno == errno.EMFILE else f"cannot save TensorBoard's events in {where!r}"
        raise SaveError(f"{what}: {_why(e)} ({_kept(run)})") from None
    except Exception as e:  # out of memory, else raised
        if (short := out_of_memory(e)) is not None:
            raise short from None
        raise
    finally:
        try:
            run.close()  # after an error (a second close does nothing)
        except OSError:
            pass  # the events file failing too, after the error on its way out: that one is the one to tell


def _train(run: Run, started: float) -> TrainResult:
    """The part of :func:`train` after the run is set up: the step-0 scalars and picture, the loop, the final
    save."""
    interrupted = False
    check_received()  # a Ctrl-C whose KeyboardInterrupt Python dropped while the run was being set up
    if run.done:  # resumed at or past its total: nothing to train, nothing written, nothing changed
        run.close()
        return TrainResult(run.model, run.logdir, run.metrics, run.step, run.epoch, 0.0, 0, history=[],
                           already_done=True)
    if run.step == 0:  # the untrained network, where the curves begin and the slider starts
        run.log()
        run.draw()
    # from here a signal only asks the loop to stop, and every later one is absorbed, until the final
    # checkpoint is saved and the run closed: a second Ctrl-C cannot cut the save short
    with stop_on_signals() as flag:
        while run.step < run.total_steps:
            run.train_step()
            interrupted = run.stop_requested(flag)
            if interrupted or run.log_due():
                run.log()
            if run.draw_due():
                run.draw()
            if run.save_due():
                run.save()
            if interrupted:
                break
        run.save()
        run.close()
        return TrainResult(run.model, run.logdir, run.metrics, run.step, run.epoch,
                           time.perf_counter() - started, run.steps_this_run, interrupted, run.history,
                           kept=run.scratch is None)
