"""What a run writes for TensorBoard: scalars, pictures, histograms, the seed's graph (hparams: :mod:`.hparams`).

Only the main process writes (rank 0 under torchrun); elsewhere every method is a no-op, so a
loop calls them unconditionally.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..module import TanhNet
from .data import Split

Tensor = torch.Tensor
PARAMS = ("U", "b", "W", "c")


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

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
