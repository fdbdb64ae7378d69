"""A group's data: each run's own data set and split, exactly as train.py makes them, stacked (K, N, ·).

Runs with different seeds have different data (the seed draws the points and the split), so
each network of the ensemble reads its own rows. Runs that share a seed and the data settings
share one drawing (it is made once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..console import counted
from ..training.config import TrainConfig
from ..training.data import DataLabelWarning, Split, label_advice, load_csv
from ..training.setup import load_split
from ..training.wording import setting

Tensor = torch.Tensor
# the settings that make a run's data, as an error names them (wording.setting)
DATA_SETTINGS = {"dataset": setting("dataset"), "data": setting("data"), "n_samples": setting("n_samples"),
                 "noise": setting("noise"), "test_fraction": setting("test_fraction"),
                 "standardize": setting("standardize"), "seed": setting("seed")}
DATA_FIELDS = tuple(DATA_SETTINGS)


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


def one_label_files(files: dict) -> set[str]:
    """The --data files (path -> points, labels) whose labels are all one value: :func:`.runner.prepare` warns
    about each as a whole, so :func:`one_label_runs` leaves their runs out."""
    return {path for path, (_, labels) in files.items() if label_advice(labels, "") is not None}


def one_label_runs(runs: list, data: GroupData, whole: set[str], found: dict[str, list]) -> None:
    """Add to ``found`` the runs of a group whose training or test split holds one label only (a seed's split of
    a small or lopsided data set), but not those of the ``whole`` files of one label (:func:`one_label_files`)."""
    found["checked"] = found.get("checked", 0) + len(runs)
    parts = {"trained": data.y_train, "tested": data.y[:, data.n_train:]}
    for part, y in parts.items():
        if y.shape[1] == 0:
            continue
        alike = (y.amin(1) == y.amax(1)).flatten().tolist()
        for run, one in zip(runs, alike):
            c = run.config
            if one and c.data not in whole:
                found[part].append(run)


def one_label_advice(found: dict[str, list], share: bool = False) -> DataLabelWarning | None:
    """One warning line for the runs :func:`one_label_runs` found, or None. It counts the runs this start trained
    (``share``: this process's share of them, under torchrun), not those a resumed sweep had trained before."""
    trained = found["trained"]
    seen = {r.index for r in trained}
    tested = [r for r in found["tested"] if r.index not in seen]
    if not (trained or tested):
        return None
    first = (trained or tested)[0]
    parts = [f"{len(trained)} trained on one label only"] if trained else []
    parts += [f"{len(tested)} tested on one label only"] if tested else []
    whose = "this process trained" if share else "trained in this start"
    return DataLabelWarning(f"of the {counted(found['checked'], 'run')} {whose}, {' and '.join(parts)} (run "
                            f"{first.index}: seed {first.seed}): such a run can reach an "
                            "accuracy of 1.000, and count as solved, by saying that label everywhere; more samples or "
                            f"another {setting('test_fraction')} give each split both labels")
