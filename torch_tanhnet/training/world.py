"""This process's place among the training processes, and its share of each batch.

A plain run is the world of one; under torchrun (:mod:`.distributed`) each process holds a
rank. Every process builds the same seeded data and takes every world-size-th sample of each
batch; its loss is scaled so that DistributedDataParallel's mean of the processes' gradients is
exactly the gradient of the handout's ε over the whole batch, however unequal the shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Tensor = torch.Tensor


@dataclass
class World:
    """This process's place among the training processes (one, unless launched by torchrun)."""

    rank: int = 0
    size: int = 1
    all_reduce: Callable[[Tensor], Tensor] | None = None  # sums a tensor over all processes, in place
    barrier: Callable[[], None] | None = None
    broadcast: Callable[[object], object] | None = None  # rank 0's object (picklable), returned on every process

    def from_main(self, obj):
        """Rank 0's ``obj`` on every process (``obj`` itself in a world of one); a collective: every process calls."""
        return obj if self.broadcast is None else self.broadcast(obj)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, t: Tensor) -> Tensor:
        if self.all_reduce is not None:
            self.all_reduce(t)
        return t

    def mine(self, t: Tensor) -> Tensor:
        """This process's share of any set of samples: every size-th row from its rank on."""
        return t if self.size == 1 else t[self.rank::self.size]

    def share(self, X: Tensor, y: Tensor, batch_size: int) -> tuple[Tensor, Tensor, float]:
        """This process's rows of a batch of ``batch_size`` samples, and the factor for its loss.

        ε over the batch is (1/B) Σ L_i; this process's loss is the mean over its n rows, and DDP
        averages the P processes' gradients, so each loss is scaled by n·P/B: the mean of the scaled
        gradients is then the gradient of ε over the whole batch.
        """
        X, y = self.mine(X), self.mine(y)
        return X, y, X.shape[0] * self.size / batch_size

    def agree(self, digest: str, device: torch.device | None = None) -> bool:
        """Whether every process holds the hex ``digest`` (a hash of the data it read); True for a world of one.

        Two sums over the processes, on every one of them: each checks that the sum of the digests' bytes is
        size times its own (all pass only if all are equal), then the count of those that failed; so every
        process gets the same answer."""
        if self.all_reduce is None or self.size == 1:
            return True
        mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.int64, device=device)
        total = self.sum(mine.clone())
        failed = torch.tensor([int(bool((total != mine * self.size).any()))], dtype=torch.int64, device=device)
        return self.sum(failed).item() == 0

    def wait(self) -> None:
        if self.barrier is not None:
            self.barrier()
