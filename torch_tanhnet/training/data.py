"""2-D binary classification data: seeded generators, a user's CSV file, a seeded split.

The generators are the data sets of the TensorFlow Playground and micrograd's demo,
drawn at unit scale (features within about [−1.5, 2.5]). Nothing is downloaded.
Every generator returns X (N, 2) float64 and y (N, 1) float64 in {0, 1}, half of
each class (the odd sample, if any, goes to class 1).
"""

from __future__ import annotations

import csv
import math
import re
from array import array
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import console
from ..numbers import OutOfRange, real
from .wording import Worded, entry, printable, setting

Tensor = torch.Tensor


class DataError(Worded, ValueError):
    """Bad data or data settings; its message is one line meant for the user (settings named with
    :func:`.wording.setting`)."""


class DataScaleWarning(Worded, UserWarning):
    """Features far from the scale the network starts at; training may stall until they are standardized. Names
    the setting as Python (``standardize=True``) or the command line (``--standardize``) does."""


class DataLabelWarning(Worded, UserWarning):
    """Labels of one class only: the cost falls by saying that class everywhere, and accuracy says nothing."""


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
        raise DataError(f"{setting('n_samples')} must be at least 2, got {n_samples}")
    noise = DEFAULT_NOISE[name] if noise is None else noise
    if not math.isfinite(noise) or noise < 0:
        raise DataError(f"{setting('noise')} must be a finite number ≥ 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    return GENERATORS[name](n_samples, noise, g)


def _number(s: str) -> float | None:
    """A CSV number (:func:`..numbers.real`: not ``1_000`` nor other scripts' digits), or None."""
    try:
        return real(s)
    except OutOfRange:  # 1e400 or 1e-400: a number, past a float (the finite check names an infinite one)
        return float(s)
    except ValueError:
        return None


def _lenient_number(s: str) -> bool:
    """Whether Python's float reads ``s`` (``1_000``, ``１`` too): such a first line is a typo'd row, not a header."""
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_csv(path: str | Path) -> tuple[Tensor, Tensor]:
    """Read ``x1,x2,label`` rows, UTF-8 (a byte-order mark is allowed); labels must be 0 or 1.

    The first non-empty row is a header when it has three fields and none is a number
    (``x1,x2,label``); every other row must be three numbers, so a typo in a first row of data is an
    error naming line 1, not a header dropped in silence. Raises DataError naming the file (and the line, where
    there is one) for a missing, unreadable or empty file, a file that is not UTF-8 text (binary,
    gzip, UTF-16), a row without three columns, a value that is not a number, a label other than
    0/1, a NaN or infinite feature, or a field longer than Python's csv allows.
    """
    path = Path(path)
    try:
        exists = path.exists()
    except OSError as e:  # a name past the system's limit (ENAMETOOLONG), say: Path.exists raises, not False
        raise DataError(f"data file {str(path)!r} cannot be read ({e.strerror or e})") from None
    if not exists:
        there = entry(path)  # a link to nothing, or to itself
        built_in = f" ({str(path)!r} is a built-in data set: {setting('dataset')} {path})" if str(
            path) in GENERATORS else ""
        raise DataError(f"data file {str(path)!r} does not exist" + (f" ({there})" if there != "nothing" else "")
                        + built_in)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} is not a regular file ({entry(path)})")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM
            rows = _rows(path, csv.reader(f))
    except UnicodeDecodeError as e:
        raise DataError(f"{_at(path)}: not UTF-8 text (a byte 0x{e.object[e.start]:02x}): a binary, compressed or "
                        "UTF-16 file? save it as CSV in UTF-8") from None
    except OSError as e:
        raise DataError(f"{_at(path)}: cannot be read ({e.strerror or e})") from None
    if not rows:
        raise DataError(f"data file {str(path)!r} has no data rows")
    data = torch.frombuffer(rows, dtype=torch.float64).view(-1, 3)
    return data[:, :2].clone(), data[:, 2:].clone()


def _at(path: Path, line: int | None = None) -> str:
    """``pts.csv:3``, as compilers name a place in a file (an odd name quoted: :func:`console.file_name`)."""
    return console.file_name(path) if line is None else f"{console.file_name(path)}:{line}"


def _rows(path: Path, reader) -> array:
    """The data rows of a csv.reader over ``path``, checked: x1, x2, label, x1, x2, label, ... (8 bytes a value)."""
    rows = array("d")
    first = True
    try:
        for row in reader:
            lineno = reader.line_num
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            numbers = [_number(c) for c in cells]
            if first or None in numbers:
                if any("\0" in c for c in cells):
                    raise DataError(f"{_at(path, lineno)}: NUL bytes: a binary or UTF-16 file? save it as CSV in UTF-8")
                if cells[0].startswith("#"):  # read as a header when it held three words: the error fell on line 2
                    raise DataError(f"{_at(path, lineno)}: {printable(','.join(cells))!r} looks like a comment, and "
                                    "the file holds a header line and rows of x1, x2, label only: remove it")
                if first and len(cells) == 3 and not any(map(_lenient_number, cells)):
                    _check_header(path, lineno, cells)
                    first = False
                    continue  # a header line: three names, none a number even to Python (１,２,１ is data, refused)
            first = False
            if len(cells) != 3:
                sep = next((f" (separated by {c!r}? use commas)" for c in ";\t|" if len(cells) == 1 and c in cells[0]),
                           "")
                raise DataError(f"{_at(path, lineno)}: expected 3 columns (x1, x2, label), got {len(cells)}{sep}")
            if None in numbers:
                raise DataError(f"{_at(path, lineno)}: expected numbers, got {','.join(cells)!r}")
            x1, x2, label = numbers
            if not (math.isfinite(x1) and math.isfinite(x2)):
                raise DataError(f"{_at(path, lineno)}: features must be finite, got {cells[0]}, {cells[1]}")
            if label not in (0.0, 1.0):
                raise DataError(f"{_at(path, lineno)}: label must be 0 or 1, got {cells[2]}")
            rows.extend((x1, x2, label))
    except csv.Error as e:  # a field over csv's limit (131072 characters), a stray quote
        raise DataError(f"{_at(path, reader.line_num)}: not a CSV row ({e})") from None
    return rows


LABEL_NAMES = {"label", "labels", "y", "target", "class", "classes", "category", "output"}
FEATURE = re.compile(r"(x|feature|f)\d*$")  # x, x1, x2, feature1, f2: a feature's name (lower case, no spaces)


def _check_header(path: Path, lineno: int, cells: list[str]) -> None:
    """A header is read for its place, not its names: the columns are x1, x2, label in that order. A header that
    names them in another order (``label,x1,x2``; ``x1,class,x2``; ``x2,x1,label``) is refused: read by position,
    the file trained a network to predict x2 from the label and x1 and reported accuracy 1.000."""
    names = [re.sub(r"[\s_\-]", "", cell.lower()) for cell in cells]
    # refused on evidence alone: a label's name first or second with a feature's name third (x,y,z and x,y,etiqueta,
    # where y is a coordinate, are read as ever), or x2 before x1
    where = next((k for k in (0, 1) if names[k] in LABEL_NAMES), None) if FEATURE.match(names[2]) else None
    if where is None and names[:2] != ["x2", "x1"]:
        return
    what = f"its column {where + 1} is {cells[where]!r}" if where is not None else "x2 comes before x1"
    raise DataError(f"{_at(path, lineno)}: the header {printable(','.join(cells))!r} names the columns in another "
                    f"order ({what}); the columns are read as x1, x2, label in that order, whatever a header says: "
                    "reorder them")


def scale_advice(X: Tensor, where: str = "") -> DataScaleWarning | None:
    """A one-line warning when a feature of X (N, 2) reaches beyond ±5 or stays within ±0.01, else None (a warning,
    not its text: the text names ``standardize`` as its reader does, Python or the command line); ``where`` names
    the data (a sweep's file).

    Far out, g = u_j1 x_i1 + u_j2 x_i2 + b_j is large from the first step, tanh saturates
    (tanh' = 1 − h² ≈ 0) and gradients vanish; very close in, the features barely move g.
    Either way ``--standardize`` (x − mean)/std puts them where the network learns.
    """
    reach = X.abs().amax(0)
    if not ((reach > LARGE).any() or (reach < SMALL).any()):
        return None
    ranges = ", ".join(f"x{k + 1} in [{_apart(lo, hi)}]" for k, (lo, hi) in
                       enumerate(zip(X.amin(0).tolist(), X.amax(0).tolist())))
    why = "tanh units saturate and gradients vanish" if (reach > LARGE).any() else "they barely move the tanh units"
    return DataScaleWarning(f"the features{where and ' ' + where} lie far from the network's scale ({ranges}; the "
                            f"built-in data sets lie "
                            f"within about ±2.5): {why}; {setting('standardize')} trains on (x - mean)/std")


def _apart(lo: float, hi: float) -> str:
    """"lo, hi" at three significant digits, or where they print alike there, at enough (up to 12) to show their
    spread: features of 1e5 ± 3 read [1e+05, 1e+05] at three, hiding it."""
    a, b = f"{lo:.3g}", f"{hi:.3g}"
    if a == b and hi > lo and math.isfinite(hi - lo):
        digits = min(12, math.ceil(math.log10(max(abs(lo), abs(hi)) / (hi - lo))) + 2)
        a, b = f"{lo:.{digits}g}", f"{hi:.{digits}g}"
    return f"{a}, {b}"


def label_advice(y: Tensor, where: str, tested: bool = False) -> DataLabelWarning | None:
    """A one-line warning when every label in ``y`` is the same, else None. Trained on (``tested`` False), the cost
    ε = −mean(y log σ(z) + (1 − y) log(1 − σ(z))) then falls by pushing σ(z) towards that label at every point:
    the network learns no boundary, and an accuracy of 100% says nothing. Tested on, a network that says that
    label everywhere scores 100%, boundary or not."""
    if y.numel() == 0 or bool((y != y.flatten()[0]).any()):
        return None
    label = f"{float(y.flatten()[0]) + 0.0:g}"  # a file's -0 labels: 0
    if tested:
        return DataLabelWarning(f"every label {where} is {label}: a network that says {label} everywhere scores "
                                f"1.000 on it, so its test accuracy says nothing of a boundary; more samples or a "
                                f"larger {setting('test_fraction')} give it both labels")
    return DataLabelWarning(f"every label {where} is {label}: the network can only learn to say {label} "
                            "everywhere, and its accuracy says nothing; a boundary needs points of both labels")


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
        raise DataError(f"{setting('test_fraction')} must be between 0 and 1 (exclusive), got {test_fraction}")
    n = X.shape[0]
    n_test = round(n * test_fraction)
    if n_test < 1 or n - n_test < 1:
        raise DataError(
            f"too few samples for the split: {n} samples with {setting('test_fraction')} {test_fraction} "
            f"leave {n - n_test} to train and {n_test} to test; each needs at least 1"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test, train = perm[:n_test], perm[n_test:]
    X_train, X_test = X[train], X[test]
    if standardize:
        mean, std = moments(X_train)
    else:
        mean, std = torch.zeros(X.shape[1], dtype=X.dtype), torch.ones(X.shape[1], dtype=X.dtype)
    s = Split(standardised(X_train, mean, std), y[train], standardised(X_test, mean, std), y[test], mean, std)
    if standardize:
        for j in range(X.shape[1]):
            if not (s.mean[j].isfinite() and s.std[j].isfinite() and s.X_train[:, j].isfinite().all()
                    and s.X_test[:, j].isfinite().all()):
                raise DataError(f"feature x{j + 1} cannot be standardised: with values up to "
                                f"{X[:, j].abs().max().item():g} standardising it overflows float64; "
                                "rescale the data")
    return s


def moments(X: Tensor) -> tuple[Tensor, Tensor]:
    """Each feature's mean and standard deviation (1 for a constant feature, which is then only centred)."""
    mean = X.mean(0)
    std = X.std(0, unbiased=False)
    scale = X.abs().amax(0)
    if not (mean.isfinite().all() and std.isfinite().all()):  # the squares (or the sum) past float64's range,
        redo = torch.ones_like(scale, dtype=torch.bool)  # beyond about 1e154: every feature, scaled to ±1 first
    else:  # squares below float64's normal numbers (features under about 1e-154) lose their digits, then vanish:
        redo = (scale > 0) & (scale < 1e-140)  # a feature of 1e-170s read as constant (std 1), only centred
    if redo.any():  # those features' moments on the features scaled to ±1 first
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # (an all-zero feature beside: 0/0)
        mean = torch.where(redo, (X / scale).mean(0) * scale, mean)
        std = torch.where(redo, (X / scale).std(0, unbiased=False) * scale, std)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def standardised(X: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """(X − mean)/std; where X − mean overflows (values of both signs near float64's limit), from the halves, which
    cannot: (X/2 − mean/2)/(std/2), the same number (halving is exact)."""
    Z = (X - mean) / std
    if Z.isfinite().all() or not X.isfinite().all():
        return Z
    return torch.where(Z.isfinite(), Z, (X / 2 - mean / 2) / (std / 2))


def unstandardised(Z: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """The raw features back from standardised ones, Z·std + mean; from the halves where that overflows (values
    near float64's limit, whose standardised values times their deviation pass it before the mean comes back)."""
    X = Z * std + mean
    if X.isfinite().all() or not Z.isfinite().all():
        return X
    return torch.where(X.isfinite(), X, (Z * (std / 2) + mean / 2) * 2)


def check_representable(s: Split, dtype: torch.dtype) -> None:
    """Raise DataError unless the features the model sees keep their values in ``dtype``: none overflows to
    infinity (1e40 in float32), and no feature with non-zero values becomes all zeros (1e-50 in float32)."""
    name = str(dtype).removeprefix("torch.")
    X = torch.cat([s.X_train, s.X_test])
    for j in range(X.shape[1]):
        col = X[:, j]
        cast = col.to(dtype)
        if not cast.isfinite().all():
            i = int((~cast.isfinite()).nonzero()[0])
            value = (col[i] * s.std[j] + s.mean[j]).item()
            raise DataError(f"feature x{j + 1} has the value {value:g}, beyond {name}'s range "
                            f"(±{torch.finfo(dtype).max:.4g}); rescale the data, or use {setting('standardize')} or "
                            f"a {setting('dtype')} of float64")
        if (cast == 0).all() and (col != 0).any():
            raise DataError(f"feature x{j + 1} has values no larger than {col.abs().max().item():g}, all zero in "
                            f"{name}; rescale the data, or use {setting('standardize')} or a {setting('dtype')} of "
                            "float64")
