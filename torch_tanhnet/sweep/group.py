"""One group of a sweep trained as one ensemble: K runs, one fused call a step for all of them.

The loop, as the sweep drives it::

    while trainer.step < trainer.total_steps:
        trainer.train_step()                 # every network's ε on its batch, backward, the optimiser's step
        if trainer.log_due(): trainer.log()  # every network's four metrics, one batched pass

Run k of the group is what ``scripts/train.py`` trains with its settings and seed: the same data
and split (:mod:`.data`), the same initial weights (``TanhNetEnsemble(seeds=...)`` draws network k
as ``torch.manual_seed(seed_k); TanhNet(2, H)`` does, then ``--init-scale``), the same batches
(``epoch_order(seed_k, epoch, n)``) and the optimiser's update with its own lr, momentum and
weight decay. No Python work per run happens inside the step loop.

A network whose loss or weights stop being finite is not stopped (the others go on); it is
marked as diverged at the first log step that sees it, and its metrics from then on are NaN.

When the group has finished, :meth:`GroupTrainer.result` reads where each run ended: its
gradient's norm and its Hessian's extreme eigenvalues on its training set (:func:`.metrics.curvature`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..ensemble import EnsembleAdam, EnsembleSGD, TanhNetEnsemble
from ..training.config import TrainConfig
from ..training.setup import epoch_order, optimizer_settings_differ, scale_initial_weights
from .data import GroupData, SplitCache, stack
from .metrics import curvature, measure
from .plan import Group

Tensor = torch.Tensor


def _per_network(values: list[float]):
    """One number when all networks share it (the optimiser's cheaper path), else K numbers."""
    return values[0] if len(set(values)) == 1 else torch.tensor(values, dtype=torch.float64)


def make_optimizer(kind: str, params, configs: list[TrainConfig]) -> torch.optim.Optimizer:
    """EnsembleSGD or EnsembleAdam with each network's lr, momentum and weight decay (train.py's defaults otherwise)."""
    lr = _per_network([c.lr for c in configs])
    wd = _per_network([c.weight_decay for c in configs])
    if kind == "adam":
        return EnsembleAdam(params, lr=lr, weight_decay=wd)
    return EnsembleSGD(params, lr=lr, momentum=_per_network([c.momentum for c in configs]), weight_decay=wd)


def set_gradients(model: TanhNetEnsemble, X: Tensor, y: Tensor) -> None:
    """Each network's gradient of its own ε into ``.grad`` (replacing what was there): the fused pass asked
    directly (:meth:`TanhNetEnsemble.loss_and_grad`), without the autograd engine."""
    for p in model.parameters():
        p.grad = None
    model.loss_and_grad(X, y)


@dataclass
class GroupResult:
    """What a trained group leaves: its runs' final weights, their metrics at every log step, divergence."""

    runs: list[int]  # the sweep's run indices, in the order of the other tensors' network dimension
    params: dict[str, Tensor]  # U (K, H, 2), b (K, H), W (K, 1, H), c (K, 1), on the CPU
    history: Tensor  # (logs, K, 4) float64: metrics.METRICS at each of log_steps
    log_steps: list[int]
    diverged_at: Tensor  # (K,) int64: the first log step that found the network's loss not finite; 0: never
    curvature: Tensor | None = None  # (K, 3) float64: metrics.CURVATURE at the end; None in a checkpoint older than it

    def as_dict(self) -> dict:
        return {"runs": self.runs, "params": self.params, "history": self.history, "log_steps": self.log_steps,
                "diverged_at": self.diverged_at, "curvature": self.curvature}

    @classmethod
    def from_dict(cls, d: dict) -> GroupResult:
        return cls(**d)

    def model(self) -> TanhNetEnsemble:
        """The trained networks as an ensemble: ``result.model()[k]`` is run ``runs[k]`` as a TanhNet."""
        U = self.params["U"]
        ens = torch.nn.utils.skip_init(TanhNetEnsemble, U.shape[0], U.shape[2], U.shape[1], dtype=U.dtype)
        ens.load_state_dict(self.params)
        return ens


class GroupTrainer:
    """A group's ensemble, optimiser, data, position and metrics; :func:`train_group` drives it."""

    def __init__(self, group: Group, runs: list, log_steps: list[int], total_steps: int, device: torch.device,
                 state: dict | None = None, files: dict | None = None, check: Callable[[], None] | None = None
                 ) -> None:
        """``files``: the sweep's --data files as it read them (:attr:`.plan.Plan.files`); None: read here.
        ``check``: called now and then while the runs' data are drawn (it may raise to stop: a Ctrl-C)."""
        self.group, self.runs, self.device = group, runs, device
        configs = [r.config for r in runs]
        self.data: GroupData = stack(configs, device, SplitCache(files), check)
        self.seeds = [r.seed for r in runs]
        K = len(runs)
        self.model = TanhNetEnsemble(K, 2, group.hidden, device=device, dtype=getattr(torch, group.dtype),
                                     seeds=self.seeds)
        scale_initial_weights(self.model, torch.tensor([c.init_scale for c in configs], dtype=torch.float64))
        self.optimizer = make_optimizer(group.optimizer, self.model.parameters(), configs)
        self.n_train, self.batch_size = self.data.n_train, group.batch_size
        self.steps_per_epoch = group.steps_per_epoch
        self.total_steps = total_steps
        self.log_steps = log_steps
        # float64 whatever the runs' dtype: an accuracy of 95 / 100 must stay 0.95, not float32's 0.94999999
        self.history = torch.full((len(log_steps), K, 4), float("nan"), dtype=torch.float64, device=device)
        self.diverged_at = torch.zeros(K, dtype=torch.int64, device=device)
        # position: optimiser steps taken, epochs finished, batches taken of the current epoch, logs taken
        self.step, self.epoch, self.next_batch, self.logged = 0, 0, 0, 0
        self._order: tuple[int, Tensor] | None = None  # (epoch, each network's sample order (K, n))
        if state is not None:
            self.load_state_dict(state)

    # one step ------------------------------------------------------------------------------------

    def batch(self) -> tuple[Tensor, Tensor]:
        """Each network's next batch: its whole training set, or its own seeded order's next slice."""
        if self.batch_size == self.n_train:
            return self.data.X_train, self.data.y_train
        if self._order is None or self._order[0] != self.epoch:
            orders = {s: epoch_order(s, self.epoch, self.n_train) for s in set(self.seeds)}
            self._order = (self.epoch, torch.stack([orders[s] for s in self.seeds]).to(self.device))
        rows = self._order[1][:, self.next_batch * self.batch_size:(self.next_batch + 1) * self.batch_size]  # (K, B)
        X = torch.gather(self.data.X_train, 1, rows.unsqueeze(2).expand(-1, -1, self.data.X_train.shape[2]))
        y = torch.gather(self.data.y_train, 1, rows.unsqueeze(2))
        return X, y

    def train_step(self) -> None:
        X, y = self.batch()
        set_gradients(self.model, X, y)
        self.optimizer.step()
        self.step += 1
        self.next_batch += 1
        if self.next_batch == self.steps_per_epoch:
            self.epoch, self.next_batch = self.epoch + 1, 0

    # what is due after a step ---------------------------------------------------------------------

    def log_due(self) -> bool:
        return self.logged < len(self.log_steps) and self.step == self.log_steps[self.logged]

    def epoch_ended(self) -> bool:
        return self.next_batch == 0

    def log(self) -> None:
        """Every network's metrics at this step into the history; a network newly not finite is marked diverged."""
        m = measure(self.model, self.data.X, self.data.y, self.n_train)  # (K, 4)
        bad = ~torch.isfinite(m[:, 0])  # a NaN or infinite weight makes the training loss so
        self.diverged_at = torch.where(bad & (self.diverged_at == 0), self.step, self.diverged_at)
        self.history[self.logged] = torch.where((self.diverged_at > 0).unsqueeze(1), float("nan"), m)
        self.logged += 1

    # checkpoints ----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(), "step": self.step, "epoch": self.epoch,
                "batch": self.next_batch, "logged": self.logged, "history": self.history.cpu(),
                "diverged_at": self.diverged_at.cpu()}

    def load_state_dict(self, state: dict) -> None:
        """The position saved by :meth:`state_dict`; ValueError for one that does not fit this group (its optimizer's
        settings other than the runs', say)."""
        for name in ("history", "diverged_at"):
            mine, theirs = getattr(self, name), state[name]
            if tuple(theirs.shape) != tuple(mine.shape) or theirs.dtype != mine.dtype:
                def kind(t):
                    return f"{str(t.dtype).removeprefix('torch.')} of shape {tuple(t.shape)}"

                raise ValueError(f"{name} {kind(theirs)}, not {kind(mine)}")
        step, epoch, batch, logged = (state[k] for k in ("step", "epoch", "batch", "logged"))
        if not (batch < self.steps_per_epoch and step == epoch * self.steps_per_epoch + batch <= self.total_steps
                and logged == sum(s <= step for s in self.log_steps)):
            raise ValueError(f"a position that does not add up (step {step}, epoch {epoch}, batch {batch}, "
                             f"logs {logged})")
        wrong = [t for t in state["diverged_at"].tolist() if t != 0 and t not in self.log_steps[:logged]]
        if wrong:  # 0 (never), or the log step that first found the loss not finite, one already taken
            raise ValueError(f"diverged_at holds step {wrong[0]}, not 0 or one of the {logged} steps logged")
        # the optimizer is loaded as saved: its lr, momentum, ... (each one number or K) must be the plan's
        differs = optimizer_settings_differ(self.optimizer, state["optimizer"].get("param_groups"))
        if differs is not None:
            raise ValueError(f"its optimizer's {differs}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch, self.next_batch, self.logged = (state[k] for k in ("step", "epoch", "batch", "logged"))
        self.history.copy_(state["history"])
        self.diverged_at.copy_(state["diverged_at"])

    def result(self) -> GroupResult:
        """The finished group: weights, metrics, divergence, and each run's gradient norm and Hessian's extreme
        eigenvalues at its final weights on its whole training set (NaN for a run that diverged)."""
        params = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        ends = curvature(self.model, self.data.X_train, self.data.y_train)
        ends[self.diverged_at.cpu() > 0] = float("nan")
        return GroupResult([r.index for r in self.runs], params, self.history.cpu(), list(self.log_steps),
                           self.diverged_at.cpu(), ends)
