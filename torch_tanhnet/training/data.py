"""2-D binary classification data: seeded generators, a user's CSV file, a seeded split.

The generators are the data sets of the TensorFlow Playground and micrograd's demo,
drawn at unit scale (features within about [−1.5, 2.5]). Nothing is downloaded.
Every generator returns X (N, 2) float64 and y (N, 1) float64 in {0, 1}, half of
each class (the odd sample, if any, goes to class 1).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import torch

Tensor = torch.Tensor


class DataError(ValueError):
    """Bad data or data settings; its message is one line meant for the user."""


class DataScaleWarning(UserWarning):
    """Features far from the scale the network starts at; training may stall until they are standardized."""


# the built-in data sets lie within about ±2.5, where tanh units with their initial weights (|u| < 0.71) respond
LARGE, SMALL = 5.0, 0.01


# noise each generator uses when none is given: the std of Gaussian jitter on each coordinate
DEFAULT_NOISE = {"moons": 0.1, "circles": 0.05, "xor": 0.05, "spiral": 0.03, "gauss": 0.25}


def _counts(n: int) -> tuple[int, int]:
    return n // 2, n - n // 2


def _jitter(X: Tensor, noise: float, g: torch.Generator) -> Tensor:
    return X + noise * torch.randn(X.shape, generator=g, dtype=X.dtype)


def _labels(n0: int, n1: int) -> Tensor:
    return torch.cat([torch.zeros(n0), torch.ones(n1)]).double().unsqueeze(1)


def moons(n: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two interleaving half circles (scikit-learn's make_moons); class 1 is the lower moon."""
    n0, n1 = _counts(n)
    t0 = math.pi * torch.rand(n0, generator=g, dtype=torch.float64)
    t1 = math.pi * torch.rand(n1, generator=g, dtype=torch.float64)
    upper = torch.stack([torch.cos(t0), torch.sin(t0)], 1)
    lower = torch.stack([1 - torch.cos(t1), 0.5 - torch.sin(t1)], 1)
    return _jitter(torch.cat([upper, lower]), noise, g), _labels(n0, n1)


def circles(n: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """A disc of radius 0.5 (class 1) inside a ring of radii 0.7 to 1 (class 0), as in the Playground."""
    n0, n1 = _counts(n)
    r = torch.cat([0.7 + 0.3 * torch.rand(n0, generator=g, dtype=torch.float64),
                   0.5 * torch.rand(n1, generator=g, dtype=torch.float64)])
    t = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    return _jitter(torch.stack([r * torch.cos(t), r * torch.sin(t)], 1), noise, g), _labels(n0, n1)


def xor(n: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points in [−1, 1]², kept 0.06 off the axes; class 1 where x₁x₂ > 0, as in the Playground."""
    n0, n1 = _counts(n)
    mag = 0.06 + 0.94 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    s1 = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    # class 0: opposite signs; class 1: same signs
    s2 = torch.cat([-s1[:n0], s1[n0:]])
    X = mag * torch.stack([s1, s2], 1)
    return _jitter(X, noise, g), _labels(n0, n1)


def spiral(n: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two interleaved spirals of 1.75 turns, as in the Playground."""
    n0, n1 = _counts(n)
    parts = []
    for count, delta in ((n0, 0.0), (n1, math.pi)):
        r = torch.arange(count, dtype=torch.float64) / max(count, 1)  # radius grows from 0 to 1
        t = 1.75 * 2 * math.pi * r + delta
        parts.append(torch.stack([r * torch.sin(t), r * torch.cos(t)], 1))
    return _jitter(torch.cat(parts), noise, g), _labels(n0, n1)


def gauss(n: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two Gaussian blobs centred at (−0.5, −0.5) (class 0) and (0.5, 0.5) (class 1), std = noise."""
    n0, n1 = _counts(n)
    centres = torch.cat([torch.full((n0, 2), -0.5), torch.full((n1, 2), 0.5)]).double()
    return _jitter(centres, noise, g), _labels(n0, n1)


GENERATORS = {"moons": moons, "circles": circles, "xor": xor, "spiral": spiral, "gauss": gauss}


def make_dataset(name: str, n_samples: int, noise: float | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """X (n, 2) float64 and y (n, 1) float64 in {0, 1} from a named generator, seeded."""
    if name not in GENERATORS:
        raise DataError(f"unknown dataset {name!r}; choose from {', '.join(GENERATORS)}")
    if n_samples < 2:
        raise DataError(f"--n-samples must be at least 2, got {n_samples}")
    noise = DEFAULT_NOISE[name] if noise is None else noise
    if not math.isfinite(noise) or noise < 0:
        raise DataError(f"--noise must be a finite number ≥ 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    return GENERATORS[name](n_samples, noise, g)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def load_csv(path: str | Path) -> tuple[Tensor, Tensor]:
    """Read ``x1,x2,label`` rows (a header line is optional); labels must be 0 or 1.

    Raises DataError naming the file and line for a missing or empty file, a row
    without three columns, a value that is not a number, a label other than 0/1,
    or a NaN or infinite feature.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    rows: list[list[float]] = []
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            cells = [cell.strip() for cell in row]
            if not rows and lineno == 1 and not all(_is_number(c) for c in cells):
                continue  # a header line
            if len(cells) != 3:
                raise DataError(f"{path}:{lineno}: expected 3 columns (x1, x2, label), got {len(cells)}")
            try:
                x1, x2, label = (float(c) for c in cells)
            except ValueError:
                raise DataError(f"{path}:{lineno}: expected numbers, got {','.join(cells)!r}") from None
            if not (math.isfinite(x1) and math.isfinite(x2)):
                raise DataError(f"{path}:{lineno}: features must be finite, got {cells[0]}, {cells[1]}")
            if label not in (0.0, 1.0):
                raise DataError(f"{path}:{lineno}: label must be 0 or 1, got {cells[2]}")
            rows.append([x1, x2, label])
    if not rows:
        raise DataError(f"data file {str(path)!r} has no data rows")
    data = torch.tensor(rows, dtype=torch.float64)
    return data[:, :2].contiguous(), data[:, 2:].contiguous()


def scale_advice(X: Tensor) -> str | None:
    """One line when a feature of X (N, 2) reaches beyond ±5 or stays within ±0.01, else None.

    Far out, g = u_j1 x_i1 + u_j2 x_i2 + b_j is large from the first step, tanh saturates
    (tanh' = 1 − h² ≈ 0) and gradients vanish; very close in, the features barely move g.
    Either way ``--standardize`` (x − mean)/std puts them where the network learns.
    """
    reach = X.abs().amax(0)
    if not ((reach > LARGE).any() or (reach < SMALL).any()):
        return None
    ranges = ", ".join(f"x{k + 1} in [{lo:.3g}, {hi:.3g}]" for k, (lo, hi) in
                       enumerate(zip(X.amin(0).tolist(), X.amax(0).tolist())))
    why = "tanh units saturate and gradients vanish" if (reach > LARGE).any() else "they barely move the tanh units"
    return (f"the features lie far from the network's scale ({ranges}; the built-in data sets lie within about "
            f"±2.5): {why}; --standardize trains on (x - mean)/std")


@dataclass
class Split:
    """A seeded train/test split, with the standardisation fitted on the training part (if any)."""

    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    mean: Tensor  # (2,) subtracted from the raw features (zeros without --standardize)
    std: Tensor  # (2,) they are divided by (ones without --standardize)

    def to(self, device, dtype) -> "Split":
        return Split(*(t.to(device=device, dtype=dtype) for t in (
            self.X_train, self.y_train, self.X_test, self.y_test, self.mean, self.std)))


def split(X: Tensor, y: Tensor, test_fraction: float, seed: int, standardize: bool = False) -> Split:
    """Shuffle with ``seed`` and hold out ``test_fraction`` of the samples (at least one each side)."""
    if not 0 < test_fraction < 1:
        raise DataError(f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    n = X.shape[0]
    n_test = round(n * test_fraction)
    if n_test < 1 or n - n_test < 1:
        raise DataError(
            f"too few samples for the split: {n} samples with --test-fraction {test_fraction} "
            f"leave {n - n_test} to train and {n_test} to test; each needs at least 1"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = perm[:n_test], perm[n_test:]
    X_train, X_test = X[train], X[test]
    if standardize:
        mean = X_train.mean(0)
        std = X_train.std(0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))  # a constant feature is only centred
    else:
        mean, std = torch.zeros(X.shape[1], dtype=X.dtype), torch.ones(X.shape[1], dtype=X.dtype)
    return Split((X_train - mean) / std, y[train], (X_test - mean) / std, y[test], mean, std)
