"""A group's data: each run's own data set and split, exactly as train.py makes them, stacked (K, N, ·).

Runs with different seeds have different data (the seed draws the points and the split), so
each network of the ensemble reads its own rows. Runs that share a seed and the data settings
share one drawing (it is made once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..training.config import TrainConfig
from ..training.data import Split, load_csv
from ..training.setup import load_split

Tensor = torch.Tensor
DATA_FIELDS = ("dataset", "data", "n_samples", "noise", "test_fraction", "standardize", "seed")


def data_key(config: TrainConfig) -> tuple:
    return tuple(getattr(config, f) for f in DATA_FIELDS)


class SplitCache:
    """load_split once per distinct data settings and seed; a --data file's rows from ``files`` (path -> points,
    labels: each file as the sweep read it once, :attr:`.plan.Plan.files`), never read again."""

    def __init__(self, files: dict[str, tuple[Tensor, Tensor]] | None = None) -> None:
        self._found: dict[tuple, Split] = {}
        self.files = files if files is not None else {}

    def __call__(self, config: TrainConfig) -> Split:
        key = data_key(config)
        if key not in self._found:
            if config.data is not None and config.data not in self.files:
                self.files[config.data] = load_csv(config.data)
            self._found[key] = load_split(config, self.files.get(config.data) if config.data is not None else None)
        return self._found[key]


@dataclass
class GroupData:
    X_train: Tensor  # (K, n_train, 2) each run's (standardised) training points, in the run's dtype and device
    y_train: Tensor  # (K, n_train, 1)
    X: Tensor  # (K, n_train + n_test, 2): training then test points, for measuring
    y: Tensor  # (K, n_train + n_test, 1)
    n_train: int


def stack(configs: list[TrainConfig], device: torch.device, splits: SplitCache | None = None,
          check: Callable[[], None] | None = None) -> GroupData:
    """The K runs' splits, converted as train.py converts them (float64 → the run's dtype), stacked. ``check`` is
    called every few hundred runs (each run's data set is drawn alone, ~0.25 ms: 10⁵ runs take half a minute), so
    that a Ctrl-C can stop the drawing."""
    splits = splits or SplitCache()
    found = []
    for i, c in enumerate(configs):
        if check is not None and i % 256 == 0:
            check()
        found.append(splits(c))
    dtype = getattr(torch, configs[0].dtype)

    def put(tensors: list[Tensor]) -> Tensor:
        return torch.stack(tensors).to(device=device, dtype=dtype)

    X_train, y_train = put([s.X_train for s in found]), put([s.y_train for s in found])
    X = torch.cat([X_train, put([s.X_test for s in found])], 1)
    y = torch.cat([y_train, put([s.y_test for s in found])], 1)
    return GroupData(X_train, y_train, X, y, X_train.shape[1])
