"""What a run writes for TensorBoard: scalars, their layout, pictures, the handout's graph (hparams: :mod:`.hparams`).

The tags are named so that TensorBoard, which sorts groups (the part before the first
``/``) by name and opens the first two in Time Series, leads with learning::

    accuracy/train, accuracy/test, loss/train, loss/test      the two open groups
    loss_hessian/min_eigenvalue, …/max_eigenvalue             at every log (N·P² ≤ 10⁶), else the picture steps
    maps/decision_boundary, maps/hidden_units                 pictures, on a log-like schedule
    norm/grad/U … /total, norm/param/U …                      ‖Ū‖ … and ‖U‖ …
    param/U/u11 … param/c/c                                   each parameter (4H + 1 ≤ 64)
    param_grad/U/u11 … param_grad/c/c                         its gradient ū11 … c̄ at the last step, likewise
    param/U, param_grad/U …  (histograms)                     wider networks, instead
    run/lr, run/step_ms, run/world_size, tanh/saturation      housekeeping, last

and the Custom Scalars tab gets a curated layout (:func:`layout`): loss train and test on
one chart, accuracy on one, the gradient norms on one, the parameter norms on one, the
Hessian's extreme eigenvalues on one, and a chart per parameter tensor and one per gradient for small networks.

Only the main process writes (rank 0 under torchrun); elsewhere every method is a no-op, so a
loop calls them unconditionally.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from ..module import TanhNet
from .data import Split
from .metrics import leaf_grad
from .writer_lock import FolderMoved, Watch

Tensor = torch.Tensor
PARAMS = ("U", "b", "W", "c")
SMALL_NETWORK = 64  # up to this many parameters (H ≤ 15), each is a curve; wider networks get histograms


def is_small(model: TanhNet) -> bool:
    return sum(p.numel() for p in model.parameters()) <= SMALL_NETWORK


def parameter_tags(hidden: int) -> list[str]:
    """The handout's names of U, b, W, c's numbers in their storage order: ``param/U/u11`` … ``param/c/c``.

    u_jk is U[j−1, k−1] (unit j, input k), as in g_ij = u_j1 x_i1 + u_j2 x_i2 + b_j; from 10
    units on, a comma keeps j and k apart (``u10,1``).
    """
    sep = "," if hidden >= 10 else ""
    units = range(1, hidden + 1)
    return ([f"param/U/u{j}{sep}{k}" for j in units for k in (1, 2)] + [f"param/b/b{j}" for j in units]
            + [f"param/W/w{j}" for j in units] + ["param/c/c"])


def layout(small: bool) -> dict:
    """The Custom Scalars tab's charts (``SummaryWriter.add_custom_scalars``): category → title → regexes. The tab
    merges the layouts of the runs it shows by title: a chart's title is the same in every run, or two charts of
    one tag appear (the least eigenvalue's did, over runs with and without a Hessian at every log)."""
    charts = {
        "learning": {
            "loss: train and test": ["Multiline", [r"^loss/(train|test)$"]],
            "accuracy: train and test": ["Multiline", [r"^accuracy/(train|test)$"]],
        },
        "norms": {
            "gradient norms |U-bar|, |b-bar|, |W-bar|, |c-bar|, total": ["Multiline", [r"^norm/grad/"]],
            "parameter norms |U|, |b|, |W|, |c|": ["Multiline", [r"^norm/param/"]],
        },
    }
    # one chart each: on one axis the greatest (~1) flattened the least (~1e-4) to a line, its sign unreadable. Logged
    # at the picture steps only (a large run), a few points, which TensorBoard's default smoothing (0.6) drags towards
    # step 0's value (a least eigenvalue of +4.9e-5 read as -0.0095, a minimum as a saddle): the title's advice
    charts["landscape"] = {
        "Hessian's least eigenvalue (below 0 where the gradient is ~0: a saddle; few points: read with smoothing 0)":
            ["Multiline", [r"^loss_hessian/min_eigenvalue$"]],
        "Hessian's greatest eigenvalue (the sharpest curvature)": ["Multiline", [r"^loss_hessian/max_eigenvalue$"]],
    }
    if small:
        charts["parameters"] = {f"{name}: {what}": ["Multiline", [rf"^param/{name}/"]] for name, what in (
            ("U", "u_jk, input k into unit j"), ("b", "b_j, unit j's bias"), ("W", "w_j, unit j into z"),
            ("c", "the bias of z"))}
        # the handout's adjoints, entry by entry: what the backward equations computed at the last step
        charts["gradients"] = {f"{bar}: {what}": ["Multiline", [rf"^param_grad/{name}/"]] for name, bar, what in (
            ("U", "U-bar", "u-bar_jk = sum_i g-bar_ij x_ik"), ("b", "b-bar", "b-bar_j = sum_i g-bar_ij"),
            ("W", "W-bar", "w-bar_j = sum_i z-bar_i h_ij"), ("c", "c-bar", "c-bar = sum_i z-bar_i"))}
    charts["run"] = {
        "learning rate": ["Multiline", [r"^run/lr$"]],
        "share of saturated tanh units (|h| > 0.97)": ["Multiline", [r"^tanh/saturation$"]],
        "ms per step": ["Multiline", [r"^run/step_ms$"]],
        "processes": ["Multiline", [r"^run/world_size$"]],
    }
    return charts


class Logger:
    """TensorBoard output of the main process; every method is a no-op elsewhere."""

    def __init__(self, logdir: Path, enabled: bool, purge_step: int | None, model: TanhNet,
                 watch: Watch | None = None) -> None:
        """``watch``: the run's own watch of its folder (:class:`~.writer_lock.Watch`); one of its own if None."""
        self.writer = None
        self.file: _Guarded | None = None  # the events file, as TensorBoard's writer thread writes it
        self.reported = False  # whether its error has been raised
        self.small = is_small(model)
        self.param_tags = parameter_tags(model.U.shape[0]) if self.small else []
        self.grad_tags = [t.replace("param/", "param_grad/", 1) for t in self.param_tags]  # param_grad/U/u11, …
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # imported here: it is slow to import

            watch = watch or Watch(logdir)
            # by its absolute name: TensorBoard's thread opens the file by name at each write, and a relative one
            # would lead into another folder between the watch's check and the write, were os.chdir called then
            self.writer = _writer_sorted_last(SummaryWriter, Path(watch.absolute), purge_step)
            self.file = _Guarded.around(self.writer, watch)
            self.writer.add_custom_scalars(layout(self.small))
            self.check()

    def check(self) -> None:
        """Raise, once, the OSError (a full disk, say) that writing the events file met in TensorBoard's thread."""
        if self.file is not None and self.file.error is not None and not self.reported:
            self.reported = True
            raise self.file.error

    def scalars(self, values: dict[str, float], step: int, model: TanhNet | None = None) -> None:
        """All of a step's scalars in one event (one ``add_scalar`` each cost 17 events a log); with
        ``model``, a small network's parameters too, each under its :func:`parameter_tags` tag."""
        if self.writer is None:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        if model is not None and self.small:
            numbers = torch.cat([getattr(model, n).detach().reshape(-1) for n in PARAMS]).double().cpu().tolist()
            values = {**values, **dict(zip(self.param_tags, numbers))}
            grads = [leaf_grad(model, n) for n in PARAMS]
            if all(g is not None for g in grads):  # the last step's ∂ε/∂θ, entry by entry (none before the first)
                numbers = torch.cat([g.detach().reshape(-1) for g in grads]).double().cpu().tolist()
                values.update(zip(self.grad_tags, numbers))
        merged = Summary(value=[Summary.Value(tag=tag, simple_value=float(x)) for tag, x in values.items()])
        self.writer._get_file_writer().add_summary(merged, step)
        self.check()

    def pictures(self, model: TanhNet, data: Split, X_raw: Tensor, step: int, title: str, subtitle: str) -> None:
        """The decision boundary and the hidden units; a wide network's histograms of U, b, W, c and gradients."""
        if self.writer is None:
            return
        from .render import decision_boundary_card, hidden_units_image

        self.writer.add_image("maps/decision_boundary", decision_boundary_card(
            model, X_raw, data.y_train, data.mean, data.std, title, subtitle), step, dataformats="HWC")
        self.writer.add_image("maps/hidden_units", hidden_units_image(model, X_raw, data.mean, data.std), step,
                              dataformats="HWC")
        if not self.small:
            for name in PARAMS:
                p = getattr(model, name)
                self.histogram(f"param/{name}", p.detach(), step)
                if p.grad is not None:
                    self.histogram(f"param_grad/{name}", p.grad, step)
        self.check()

    def histogram(self, tag: str, values: Tensor, step: int) -> None:
        try:
            self.writer.add_histogram(tag, values, step)
        except ValueError:  # TensorBoard's buckets end at |x| = 1e20: a finite but larger value has none
            warnings.warn(f"{tag} at step {step} lies beyond TensorBoard's histogram range; not logged", stacklevel=2)

    def graph(self, model: TanhNet) -> None:
        """The handout's computational graph (:func:`.graph.seed_graph`) for the Graphs tab."""
        if self.writer is not None:
            from tensorboard.compat.proto.event_pb2 import Event

            from .graph import seed_graph

            self.writer._get_file_writer().add_event(Event(graph_def=seed_graph(model).SerializeToString()))
            self.check()

    def flush(self) -> None:
        """Write what is queued to the events file now (TensorBoard's thread does so every two minutes); raises the
        OSError that writing met, unless raised before."""
        if self.writer is not None:
            self.writer.flush()
            self.check()

    def close(self) -> None:
        """Write what is queued and close the file; raises the OSError that writing it met, unless raised before."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()
            self.check()


class _Guarded:
    """The events file's record writer, as TensorBoard's writer thread calls it: an OSError (a full disk) is kept
    for the main thread, which raises it at the Logger's next call (:meth:`Logger.check`), instead of ending the
    thread with a traceback on stderr and failing every later call, close included; later writes are dropped.
    So is a folder renamed while the run goes on (``watch``): TensorBoard's file opens the events file by its name
    at each write, which then led into whatever folder took the name (another run's), or made it again."""

    def __init__(self, inner, watch: Watch | None = None) -> None:
        self.inner, self.error, self.watch = inner, None, watch

    @classmethod
    def around(cls, writer, watch: Watch | None = None) -> "_Guarded":
        """Put a guard between ``writer``'s (a SummaryWriter's) queue and its file."""
        queued = writer._get_file_writer().event_writer._async_writer
        guard = cls(queued._writer, watch)
        queued._writer = queued._worker._record_writer = guard
        return guard

    def _moved(self) -> bool:
        """Whether the folder was renamed (the error kept, as a full disk's); about 2 µs, an os.stat."""
        if self.error is None and self.watch is not None:
            try:
                self.watch.check()
            except FolderMoved as e:
                self.error = e
        return isinstance(self.error, FolderMoved)

    def _call(self, name: str, *args) -> None:
        if self.error is None and not self._moved():
            try:
                getattr(self.inner, name)(*args)
            except OSError as e:
                self.error = e

    def write(self, data: bytes) -> None:
        self._call("write", data)

    def flush(self) -> None:
        self._call("flush")

    def close(self) -> None:
        if self._moved():  # what is still buffered goes nowhere rather than into another folder
            return
        try:
            self.inner.close()
        except OSError as e:
            self.error = self.error or e

    @property
    def closed(self) -> bool:
        return self.inner.closed


def _writer_sorted_last(SummaryWriter, logdir: Path, purge_step: int | None):
    """A SummaryWriter whose events file sorts after every other in ``logdir``.

    TensorBoard reads a run's events files in name order, and a resumed run's events must come
    after the ones it continues. The names begin with the second they were opened
    (``events.out.tfevents.<seconds>.<host>.<pid>.<n>``); within one second they differ by the
    process id and a per-process counter, which sort as text (10 before 9). So a writer opened in
    the same second as the folder's last file (in practice: a run resumed from Python in the same
    process) may sort first; then its file, still empty of events, is removed and a new writer is
    opened in the next second. Waiting only then keeps the usual case free of any wait.
    """
    import time

    def names() -> set[str]:
        return {f.name for f in logdir.glob("events.out.tfevents.*")}

    before = names() if logdir.is_dir() else set()
    writer = SummaryWriter(str(logdir), purge_step=purge_step)
    new = names() - before
    if before and new and max(names()) not in new:
        opened, last = int(max(new).split(".")[3]), max(before)
        if opened < _second(last):  # the clock reads earlier than the last file's second: no wait helps
            _name_after(writer, last)
            return writer
        writer.close()
        for name in new:
            (logdir / name).unlink(missing_ok=True)
        while int(time.time()) <= opened:
            time.sleep(0.05)
        writer = SummaryWriter(str(logdir), purge_step=purge_step)
    return writer


def _second(name: str) -> int:
    """The second an events file's name begins with (``events.out.tfevents.<seconds>.…``); 0 for a name without
    one (a file of another writer's making)."""
    part = name.split(".")[3] if name.count(".") >= 3 else ""
    return int(part) if part.isdigit() else 0


def _name_after(writer, last: str) -> None:
    """Rename ``writer``'s new events file to sort after ``last``, the folder's last: a clock set back since that
    file was opened (a run resumed on another machine, a clock corrected) named the resumed run's file earlier,
    and TensorBoard, reading the older file after it, showed the stopped run's steps as the curve's end (its
    tail past the checkpoint, the resumed steps purged). The name's second becomes ``last``'s + 1; the rest (host,
    process, counter) stays. TensorBoard's file appends by name at each write: the writer is pointed at the new
    name before it writes again."""
    events = writer._get_file_writer().event_writer
    old = Path(events._file_name)
    parts = old.name.split(".")  # events, out, tfevents, <seconds>, <host ...>, <pid>, <n>
    parts[3] = f"{_second(last) + 1:010d}"
    writer.flush()
    new = old.with_name(".".join(parts))
    os.rename(old, new)
    events._file_name = str(new)
    events._general_file_writer.filename = os.fsencode(new)
