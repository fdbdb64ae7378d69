"""The training loop behind ``scripts/train.py``: data, TanhNet, optimiser, TensorBoard, checkpoints.

Step by step (:func:`train`):
1. resolve the device, make or read the data, split it (seeded);
2. build TanhNet(2, hidden) under ``torch.manual_seed(seed)`` and the optimiser;
3. restore the checkpoint when resuming (model, optimiser, step, epoch, RNG);
4. for each step: ε = model.loss(X_batch, y_batch), backward, the optimiser's step, a check
   that the loss, the gradients and the parameters are finite;
5. every ``log_interval`` steps, scalars; every ``image_interval`` steps, pictures,
   histograms and the Hessian's extreme eigenvalues; every ``checkpoint_interval`` epochs and
   at the end, an atomic checkpoint.

Everything a process of a torchrun launch needs is in :class:`World`; a plain run
is the world of one.
"""

from __future__ import annotations

import hashlib
import math
import signal
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import torch

from . import checkpoint
from .config import RESUMABLE, ConfigError, TrainConfig
from .cost import softplus
from .data import Split, load_csv, make_dataset, split
from .landscape import hessian_eigenvalues
from .module import TanhNet

Tensor = torch.Tensor
SATURATION = 0.97  # |h| above this counts as a saturated tanh unit (tanh' < 0.06)
PARAMS = ("U", "b", "W", "c")
MAX_HESSIAN_PARAMETERS = 2000  # wider networks skip the (P, P) Hessian: P passes over the data, an O(P³) eigensolve


class TrainingDiverged(RuntimeError):
    """The loss or a gradient stopped being finite; the message names the step and the tensor."""


@dataclass
class World:
    """This process's place among the training processes (one, unless launched by torchrun)."""

    rank: int = 0
    size: int = 1
    all_reduce: Callable[[Tensor], Tensor] | None = None  # sums a tensor over all processes, in place
    barrier: Callable[[], None] | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, t: Tensor) -> Tensor:
        if self.all_reduce is not None:
            self.all_reduce(t)
        return t


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
    history: list[dict[str, float]] = field(default_factory=list)  # every logged row, for callers

    @property
    def steps_per_second(self) -> float:
        return self.steps_this_run / self.seconds if self.seconds > 0 else float("nan")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("argument --device: cuda is not available on this machine")
    return torch.device(name)


def default_logdir(config: TrainConfig) -> Path:
    name = Path(config.data).stem if config.data else config.dataset
    return Path("runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


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


def make_optimizer(config: TrainConfig, model: TanhNet) -> torch.optim.Optimizer:
    """SGD or Adam, with the fused (one kernel for all parameters) update where this torch has one."""
    kind, kw = (torch.optim.Adam, {}) if config.optimizer == "adam" else (torch.optim.SGD, {"momentum": config.momentum})
    try:
        return kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):  # no fused update for this device or torch release
        return kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, **kw)


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The order of the training samples in ``epoch``: a function of (seed, epoch) alone, so resumable."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


@torch.no_grad()
def evaluate(model: TanhNet, X: Tensor, y: Tensor, world: World) -> Tensor:
    """[Σ L_i, Σ correct, N, Σ saturated h, N·H] over this process's X, summed over all processes."""
    z, H = model.forward_with_hidden(X)
    L = softplus(z) - y * z  # L_i = softplus(z_i) − y_i z_i, the seed's cost per sample
    correct = ((z > 0) == (y > 0.5)).sum()
    saturated = (H.abs() > SATURATION).sum()
    sums = torch.stack([L.sum(), correct.to(L.dtype), torch.tensor(float(X.shape[0]), dtype=L.dtype, device=L.device),
                        saturated.to(L.dtype), torch.tensor(float(H.numel()), dtype=L.dtype, device=L.device)])
    return world.sum(sums.double())


class Logger:
    """TensorBoard output of the main process; every method is a no-op elsewhere."""

    def __init__(self, logdir: Path, enabled: bool, purge_step: int | None) -> None:
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # imported here: it is slow to import

            self.writer = SummaryWriter(str(logdir), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        """All of a step's scalars in one event (one ``add_scalar`` each cost 17 events a log)."""
        if self.writer is not None:
            from tensorboard.compat.proto.summary_pb2 import Summary
            from torch.utils.tensorboard.summary import scalar

            merged = Summary(value=[v for tag, x in values.items() for v in scalar(tag, x).value])
            self.writer._get_file_writer().add_summary(merged, step)

    def pictures(self, model: TanhNet, data: Split, X_raw: Tensor, step: int, caption: str) -> None:
        if self.writer is None:
            return
        from .render import decision_boundary_image, hidden_units_image

        self.writer.add_image("decision_boundary", decision_boundary_image(
            model, X_raw, data.y_train, data.mean, data.std, caption=caption), step, dataformats="HWC")
        self.writer.add_image("hidden/units", hidden_units_image(model, X_raw, data.mean, data.std), step,
                              dataformats="HWC")
        for name in PARAMS:
            p = getattr(model, name)
            self.histogram(f"params/{name}", p.detach(), step)
            if p.grad is not None:
                self.histogram(f"grads/{name}", p.grad, step)

    def histogram(self, tag: str, values: Tensor, step: int) -> None:
        try:
            self.writer.add_histogram(tag, values, step)
        except ValueError:  # TensorBoard's buckets end at |x| = 1e20: a finite but larger value has none
            warnings.warn(f"{tag} at step {step} lies beyond TensorBoard's histogram range; not logged", stacklevel=2)

    def graph(self, model: TanhNet, X: Tensor, y: Tensor) -> None:
        if self.writer is not None:
            from .graph import SeedGraph

            with warnings.catch_warnings():
                # add_graph traces with torch.jit.trace, which torch now calls deprecated; TensorBoard's
                # graph tab has no other source yet, so the warning is not the user's to act on
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace")
                self.writer.add_graph(SeedGraph(model), (X[:4], y[:4]))

    def hparams(self, config: TrainConfig, metrics: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        hp = {k: ("" if v is None else v) for k, v in config.as_dict().items()
              if k not in ("logdir", "resume", "dry_run", "progress")}
        final = {f"hparam/{k.replace('/', '_')}": v for k, v in metrics.items()
                 if k.split("/")[0] in ("loss", "accuracy")}
        self.writer.add_hparams(hp, final, run_name=".", global_step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def log_curvature(logger: Logger, model: TanhNet, X: Tensor, y: Tensor, step: int) -> dict[str, float]:
    """The least and greatest eigenvalue of the Hessian of ε on (X, y), logged as ``hessian/min_eigenvalue``
    and ``hessian/max_eigenvalue``: a negative least one where the gradient vanishes marks a saddle.

    Empty (nothing computed) for a network with more than ``MAX_HESSIAN_PARAMETERS`` parameters.
    """
    if sum(p.numel() for p in model.parameters()) > MAX_HESSIAN_PARAMETERS:
        return {}
    eigenvalues = hessian_eigenvalues(model, X, y).tolist()  # ascending, computed in float64
    values = {"hessian/min_eigenvalue": eigenvalues[0], "hessian/max_eigenvalue": eigenvalues[-1]}
    logger.scalars(values, step)
    return values


@contextmanager
def stop_on_signals():
    """While inside, Ctrl-C (SIGINT) or SIGTERM sets ``flag['stop']`` instead of killing; the loop saves and returns.

    torchrun passes a Ctrl-C on to its workers as SIGTERM, hence both.
    """
    flag = {"stop": False}
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: flag.__setitem__("stop", True))
    except ValueError:  # not the main thread: leave the signals alone
        pass
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _check_finite(loss: Tensor, model: TanhNet, step: int, world: World) -> None:
    """One device sync per step: the loss, the gradients it gave and the parameters after the step.

    Under torchrun the verdict is summed over the processes, so that all of them stop together.
    """
    grads = [getattr(model, n).grad for n in PARAMS]
    params = [getattr(model, n).detach() for n in PARAMS]
    tensors = [loss.detach()] + grads + params
    if world.size == 1:
        if bool(torch.isfinite(torch.cat([t.reshape(-1) for t in tensors])).all()):
            return
        bad = [not bool(torch.isfinite(t).all()) for t in tensors]
    else:
        flags = torch.stack([(~torch.isfinite(t)).any() for t in tensors]).to(torch.float64)
        bad = [v > 0 for v in world.sum(flags).tolist()]
        if not any(bad):
            return
    names = ["the loss"] + [f"the gradient of {n}" for n in PARAMS] + [f"the parameter {n}" for n in PARAMS]
    raise TrainingDiverged(f"{names[bad.index(True)]} became NaN or infinite at step {step}; "
                           "try a smaller --lr (the last good checkpoint is kept)")


def _resume_state(config: TrainConfig, logdir: Path, given: set[str]) -> tuple[TrainConfig, dict]:
    """The run's saved settings, with the resumable ones the user gave; a change to any other is refused."""
    state = checkpoint.load(logdir / "checkpoint.pt")
    saved = TrainConfig(**{k: v for k, v in state["config"].items() if k in TrainConfig.__dataclass_fields__})
    for name in sorted(given - RESUMABLE):
        if getattr(config, name) != getattr(saved, name):
            raise ConfigError(f"argument --{name.replace('_', '-')}: {getattr(config, name)!r} differs from "
                              f"the checkpoint's {getattr(saved, name)!r}; a resumed run keeps its settings")
    override = (RESUMABLE & given) | {"resume", "logdir"}
    return TrainConfig(**{**saved.as_dict(), **{k: getattr(config, k) for k in override}}), state


def train(config: TrainConfig, world: World | None = None, given: set[str] | None = None,
          wrap: Callable[[TanhNet], torch.nn.Module] | None = None, device: torch.device | None = None) -> TrainResult:
    """Train TanhNet as ``config`` says; see the module docstring for the steps.

    ``given`` names the settings the user set explicitly (None: all of them); a resumed run
    takes the others from its checkpoint and refuses to change those that define the run.
    ``wrap`` turns the model into the module whose ``forward(X, y)`` returns the loss
    (DistributedDataParallel under torchrun); None calls ``model.loss``.
    ``device`` overrides ``config.device`` (a torchrun process's own GPU).
    Raises ConfigError, DataError, CheckpointError on bad settings, TrainingDiverged
    when the loss or a gradient stops being finite.
    """
    world = world or World()
    config.validate()
    device = device or resolve_device(config.device)
    logdir = Path(config.logdir) if config.logdir else default_logdir(config)
    state = None
    if config.resume:
        # from Python every setting counts as given; the command line says which ones the user typed
        given = set(TrainConfig.__dataclass_fields__) if given is None else given
        config, state = _resume_state(config, logdir, given)
        config.validate()
    elif (logdir / "checkpoint.pt").exists():
        raise ConfigError(f"argument --logdir: {str(logdir)!r} already holds a run (checkpoint.pt); "
                          "continue it with --resume or choose another --logdir")

    # 1. data, float64 on the CPU, then on the device in the run's dtype
    data = load_split(config)
    data_hash = fingerprint(data)
    if state is not None and state["data_fingerprint"] != data_hash:
        raise ConfigError("argument --resume: the data differ from the checkpoint's (a changed --data file?)")
    X_raw = data.X_train * data.std + data.mean  # the points as the user gave them, for the pictures
    dtype = getattr(torch, config.dtype)
    dev = data.to(device, dtype)
    n_train = dev.X_train.shape[0]
    batch = min(config.batch_size or n_train, n_train)
    steps_per_epoch = math.ceil(n_train / batch)
    mine = slice(world.rank, None, world.size)  # this process's share of any set of samples

    # 2. model and optimiser
    torch.manual_seed(config.seed)
    model = TanhNet(2, config.hidden, device=device, dtype=dtype)
    optimizer = make_optimizer(config, model)

    # 3. resume
    global_step, epoch, next_batch = 0, 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        global_step, epoch, next_batch = state["global_step"], state["epoch"], state["batch"]
        torch.set_rng_state(state["rng"]["torch"])
    step_loss = wrap(model) if wrap is not None else model.loss

    def save(metrics: dict[str, float]) -> None:
        if world.is_main:
            checkpoint.save_atomic({
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(), "global_step": global_step, "epoch": epoch,
                "batch": next_batch, "rng": {"torch": torch.get_rng_state()}, "config": config.as_dict(),
                "data_fingerprint": data_hash, "mean": data.mean, "std": data.std, "metrics": metrics,
            }, logdir / "checkpoint.pt")
        if world.barrier is not None:
            world.barrier()

    if world.is_main:
        checkpoint.remove_stale_temporaries(logdir / "checkpoint.pt")
    total_steps = config.epochs * steps_per_epoch
    if config.dry_run:
        total_steps = min(total_steps, global_step + 5)
    logger = Logger(logdir, world.is_main, purge_step=global_step + 1 if state is not None else None)
    if state is None:
        logger.graph(model, dev.X_train, dev.y_train)
    from tqdm.auto import tqdm

    show = config.progress and world.is_main
    # disable=None: a bar on a terminal, none when stderr is a file or a pipe
    bar = tqdm(total=total_steps, initial=global_step, disable=None if show else True, unit="step",
               dynamic_ncols=True)
    metrics: dict[str, float] = dict(state["metrics"]) if state is not None else {}
    history: list[dict[str, float]] = []
    start, steps_this_run, interrupted = time.perf_counter(), 0, False

    def log(step_seconds: float) -> None:
        nonlocal metrics
        train_sums = evaluate(model, dev.X_train[mine], dev.y_train[mine], world)
        test_sums = evaluate(model, dev.X_test[mine], dev.y_test[mine], world)
        norms = torch.stack([getattr(model, n).grad.norm() for n in PARAMS]
                            + [getattr(model, n).detach().norm() for n in PARAMS]).double().cpu()
        (tl, tc, tn, ts, th), (vl, vc, vn, _, _) = train_sums.tolist(), test_sums.tolist()
        g = norms[:4].tolist()
        p = norms[4:].tolist()
        metrics = {
            "loss/train": tl / tn, "loss/test": vl / vn, "accuracy/train": tc / tn, "accuracy/test": vc / vn,
            **{f"grad_norm/{n}": v for n, v in zip(PARAMS, g)},
            "grad_norm/total": math.sqrt(sum(v * v for v in g)),
            **{f"param_norm/{n}": v for n, v in zip(PARAMS, p)},
            "lr": optimizer.param_groups[0]["lr"], "hidden/saturation": ts / th,
            "dist/world_size": float(world.size), "time/step_ms": 1e3 * step_seconds,
        }
        logger.scalars(metrics, global_step)
        history.append({"step": global_step, **metrics})
        bar.set_postfix(loss=f"{metrics['loss/train']:.4f}", acc=f"{metrics['accuracy/train']:.3f}", refresh=False)

    def stop_requested(flag: dict) -> bool:
        """Any process's signal stops every process, at the same step (checked when logging)."""
        if world.size == 1:
            return flag["stop"]
        return world.sum(torch.tensor([float(flag["stop"])], device=device)).item() > 0

    # 4. the loop
    since_log, log_clock = 0, time.perf_counter()
    try:
        with stop_on_signals() as flag:
            while global_step < total_steps and not interrupted:
                order = epoch_order(config.seed, epoch, n_train) if batch < n_train else None
                while next_batch < steps_per_epoch and global_step < total_steps:
                    rows = order[next_batch * batch:(next_batch + 1) * batch] if order is not None else None
                    Xb = dev.X_train if rows is None else dev.X_train[rows]
                    yb = dev.y_train if rows is None else dev.y_train[rows]
                    # this process's share of the batch; the loss is scaled so that the mean of the
                    # processes' gradients (DDP's all-reduce) is the gradient of ε over the whole batch
                    Xb, yb = Xb[mine], yb[mine]
                    scale = Xb.shape[0] * world.size / min(batch, n_train - next_batch * batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss = step_loss(Xb, yb)
                    if scale != 1:
                        loss = loss * scale
                    loss.backward()
                    optimizer.step()
                    _check_finite(loss, model, global_step + 1, world)
                    global_step += 1
                    next_batch += 1
                    steps_this_run += 1
                    since_log += 1
                    bar.update(1)
                    last = global_step == total_steps
                    at_log = global_step % config.log_interval == 0 or last
                    stop = stop_requested(flag) if at_log or world.size == 1 else False
                    if at_log or stop:
                        now = time.perf_counter()
                        log((now - log_clock) / since_log)
                        since_log, log_clock = 0, now
                    if global_step % config.image_interval == 0 or last:
                        acc = f"  acc {metrics['accuracy/train']:.3f}" if "accuracy/train" in metrics else ""
                        logger.pictures(model, data, X_raw, global_step, f"step {global_step}{acc}")
                        if world.is_main:
                            metrics.update(log_curvature(logger, model, dev.X_train, dev.y_train, global_step))
                    if stop:
                        interrupted = True
                        break
                if next_batch == steps_per_epoch:
                    epoch, next_batch = epoch + 1, 0
                    if epoch % config.checkpoint_interval == 0:
                        save(metrics)
        save(metrics)
        if not interrupted:
            logger.hparams(config, metrics, global_step)
    finally:
        bar.close()
        logger.close()
    seconds = time.perf_counter() - start
    return TrainResult(model, logdir, metrics, global_step, epoch, seconds, steps_this_run, interrupted, history)
