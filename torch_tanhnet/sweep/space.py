"""What a sweep trains: its settings (a grid, or samples from ranges) times its seeds, as runs.

A *setting* gives every sweepable field of :class:`~torch_tanhnet.training.TrainConfig` one
value; a *run* is a setting and a seed, exactly the run ``scripts/train.py`` would train with
those settings and ``--seed``. Values are given per field as a list: the grid is their
Cartesian product, in the order of :data:`SWEEPABLE`, the last field varying fastest. With
``random=N``, N settings are drawn instead: a field given as a :class:`Range` is sampled from
it (uniformly, or log-uniformly with ``log=True``; integer fields as integers), a field given
as a list is drawn from the list, each setting independently, from ``random_seed``.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import random as _random
from dataclasses import dataclass, fields

from ..checks import short
from ..training.config import ConfigError, TrainConfig, _is, beyond_int64, plain
from ..training.setup import GENERATOR
from ..training.wording import printable, setting

# the settings of train.py that a sweep may vary, in the grid's order; the others are the sweep's own
SWEEPABLE = ("dataset", "data", "n_samples", "noise", "test_fraction", "standardize", "hidden", "init_scale",
             "optimizer", "lr", "momentum", "weight_decay", "epochs", "batch_size", "dtype")
INTEGER = {"n_samples", "hidden", "epochs", "batch_size"}
NUMBER = INTEGER | {"noise", "test_fraction", "init_scale", "lr", "momentum", "weight_decay"}
DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.name in SWEEPABLE}
SHORT = {"n_samples": "n", "test_fraction": "test", "init_scale": "init", "weight_decay": "wd",
         "batch_size": "batch", "momentum": "mom"}  # in setting names, which TensorBoard cuts at ~17 characters


@dataclass(frozen=True)
class Range:
    """Numbers from ``low`` to ``high`` (inclusive) for ``random`` sweeps; written ``LOW:HIGH`` or ``LOW:HIGH:log``."""

    low: float
    high: float
    log: bool = False

    def sample(self, rng: _random.Random, integer: bool) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            return min(max(round(value), self.integers[0]), self.integers[1]) if integer else value
        if integer:
            return rng.randint(*self.integers)
        return rng.uniform(self.low, self.high)

    @property
    def integers(self) -> tuple[int, int]:
        """The least and the greatest integer within the range (1.5:2.5 holds 2 alone; 2.5:2.7 none: lo > hi)."""
        return math.ceil(self.low), math.floor(self.high)

    def __str__(self) -> str:
        return f"{self.low:g}:{self.high:g}" + (":log" if self.log else "")


@dataclass(frozen=True)
class Run:
    """Run ``index`` of a sweep: setting ``setting`` with ``seed``; ``config`` is what train.py would run."""

    index: int
    setting: int
    seed: int
    config: TrainConfig


def as_list(given, name: str) -> list:
    """A list, a tuple, a range or a 1-d array (NumPy's, torch's) as a list; ConfigError (naming the setting
    ``name``) for anything else."""
    if isinstance(given, (list, tuple, range)) or getattr(given, "ndim", None) == 1 and hasattr(given, "tolist"):
        return list(given)
    raise ConfigError(name, f"expected a list of values, got {short(given)}")



def file_identity(path: str) -> tuple:
    """Which file ``path`` is: its (device, inode) where it exists, so that hard links are one file; else the path
    it leads to."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


def check_values(values: dict[str, list], random: int | None) -> dict[str, list]:
    """One-line ConfigErrors, in train.py's words, for each value; then for a grid that would be empty. Returns the
    values as plain Python lists of plain Python values (np.float64(0.5) as 0.5, as train.py's settings)."""
    if not isinstance(values, dict):
        raise ConfigError(f"expected the values as a dict of setting: list of values, got {short(values)}")
    out = {}
    for name, given in values.items():
        if name not in SWEEPABLE:
            raise ConfigError(f"unknown setting {name!r}; a sweep varies {', '.join(SWEEPABLE)}")
        given = as_list(given, name)
        if not given:
            raise ConfigError(name, "the grid is empty: no values given")
        seen, out[name] = {}, []
        for v in given:
            if isinstance(v, Range):
                v = plain_range(name, v)
                check_range(name, v, random)
            else:
                config = TrainConfig(**{name: v})
                config.validate()  # the very check, and message, of train.py; its value as plain Python
                v = getattr(config, name)
                # the value itself: 1 == 1.0 and 0.0 == -0.0 are one setting (trained twice), 2**53 and
                # 2**53 + 1 two; True apart from 1; a data file by the file it is (a.csv, ./a.csv, /abs/a.csv,
                # a symbolic or hard link: one)
                key = (isinstance(v, bool), v + 0.0 if isinstance(v, float) else
                       file_identity(v) if name == "data" and isinstance(v, str) else v)
                if key in seen:
                    first = "" if repr(seen[key]) == repr(v) else f" (as {seen[key]!r})"
                    shown = f"{value_text(v)} ({v!r})" if isinstance(v, bool) else repr(v)  # on, as typed
                    raise ConfigError(name, f"{shown} is given twice{first}")
                seen[key] = v
            out[name].append(v)
    files = [v for v in out.get("data", []) if v is not None]
    for name in GENERATOR:  # train.py refuses them beside --data; a sweep trained each file once a value, alike
        if files and name in out:
            raise ConfigError(name, f"applies to the built-in data sets, not to {setting('data')} {files[0]!r}; "
                                    "leave it out")
    return out


def plain_range(name: str, r: Range) -> Range:
    """``r`` with plain Python ends (np.float32 ends as floats), or ConfigError for ends that are not numbers."""
    low, high, log = plain(r.low, ["float"]), plain(r.high, ["float"]), plain(r.log, ["bool"])
    if (why := beyond_int64(low) or beyond_int64(high)) is not None:
        raise ConfigError(name, f"a range's ends {why}")
    if not (_is(low, "float") and _is(high, "float") and isinstance(log, bool)):
        raise ConfigError(name, f"a range needs two numbers and log True or False, got {short(r)}")
    return Range(low, high, log)


def check_range(name: str, r: Range, random: int | None) -> None:
    if random is None:
        raise ConfigError(name, f"a range ({r}) needs {setting('random')} N; a grid takes values")
    if name not in NUMBER:
        raise ConfigError(name, f"takes values, not a range ({r})")
    if not (math.isfinite(r.low) and math.isfinite(r.high) and r.low <= r.high):
        raise ConfigError(name, f"a range needs LOW ≤ HIGH, both finite, got {r}")
    if r.log and r.low <= 0:
        raise ConfigError(name, f"a log range needs LOW > 0, got {r}")
    if name in INTEGER and r.integers[0] > r.integers[1]:
        raise ConfigError(name, f"the range {r} holds no integer, and this setting takes integers")
    # both ends (an integer setting's: the integers within) must be settings train.py accepts
    for end in (r.integers if name in INTEGER else (r.low, r.high)):
        TrainConfig(**{name: end}).validate()


def grid(values: dict[str, list]) -> list[dict]:
    """Every combination of the values, in SWEEPABLE's order, the last field fastest; unlisted fields keep
    train.py's defaults."""
    names = [n for n in SWEEPABLE if n in values]
    return [{**DEFAULTS, **dict(zip(names, combo))} for combo in itertools.product(*(values[n] for n in names))]


def sample(values: dict[str, list], n: int, seed: int) -> list[dict]:
    """``n`` different settings drawn from ``values`` (Ranges sampled, lists drawn from), reproducibly from ``seed``.
    A draw equal to an earlier one is drawn again: trained twice with the same seeds, it would be the same runs
    counted as two settings. :meth:`SweepConfig.validate` has refused an ``n`` larger than :func:`count`; a range
    of numbers so narrow that it holds fewer floats than asked (0.5:0.5000000000000002) is refused here, after
    a thousand draws that repeat."""
    rng = _random.Random(seed)
    settings, seen, repeats = [], set(), 0
    while len(settings) < n:
        if repeats > 1000 + 10 * n:
            raise ConfigError("random", f"{n} draws, but the values gave only {len(settings)} different settings "
                                        f"in {repeats + len(settings)} tries; draw fewer, or widen the ranges")
        s = dict(DEFAULTS)
        for name in SWEEPABLE:
            if name in values:
                given = values[name]
                choice = given[0] if len(given) == 1 else given[rng.randrange(len(given))]
                s[name] = choice.sample(rng, name in INTEGER) if isinstance(choice, Range) else choice
        key = tuple((type(v), v) for v in s.values())
        if key in seen:
            repeats += 1
        else:
            seen.add(key)
            settings.append(s)
    return settings


def count(values: dict[str, list]) -> float:
    """How many different settings ``values`` make: the grid's size, or, with Ranges, how many random draws can
    differ (an integer setting's range: its integers; a number's: without end, inf)."""
    total = 1.0
    for name, given in values.items():
        lists = {v for v in given if not isinstance(v, Range)}
        ranges = [v for v in given if isinstance(v, Range)]
        drawn = set()
        for r in ranges:
            if name not in INTEGER:
                if r.low != r.high:  # numbers without end (a range too narrow for its draws: sample says so)
                    return math.inf
                drawn.add(r.low)  # 0.5:0.5, one number
                continue
            lo, hi = r.integers
            if hi - lo > 10**6:  # as good as without end for any --random a sweep fits
                return math.inf
            drawn.update(range(lo, hi + 1))
        total *= len(lists | drawn)
    return total


def swept(settings: list[dict]) -> list[str]:
    """The fields whose value differs between settings, in SWEEPABLE's order."""
    return [n for n in SWEEPABLE if len({repr(s[n]) for s in settings}) > 1]


def value_text(v, digits: int = 4) -> str:
    if v is None:
        return "default"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return printable(str(v))  # a data file's name may hold a newline


def field_digits(settings: list[dict], field: str) -> int:
    """Significant digits that tell ``field``'s float values apart, 4 to 6 (``--lr 0.123456 0.123457``: 6); 4 where
    even 6 do not (random draws: then the names are numbered, :func:`unique_names`)."""
    floats = {s[field] for s in settings if isinstance(s[field], float)}
    return next((d for d in range(4, 7) if len({f"{v:.{d}g}" for v in floats}) == len(floats)), 4)


def setting_name(setting: dict, names: list[str], digits: dict[str, int] | None = None) -> str:
    """``hidden=2,lr=0.5``: the swept values, short (``digits`` significant digits a field, 4 unless given);
    ``all`` when nothing is swept."""
    if not names:
        return "all"
    digits = digits or {}
    return ",".join(f"{SHORT.get(n, n)}={value_text(setting[n], digits.get(n, 4))}" for n in names)


def unique_names(settings: list[dict], names: list[str]) -> list[str]:
    """Setting names, with the digits that tell each field's values apart (:func:`field_digits`), numbered where
    rounding still made two alike (random sweeps)."""
    digits = {n: field_digits(settings, n) for n in names}  # once: per setting it was quadratic (19 s at 3000)
    found = [setting_name(s, names, digits) for s in settings]
    if len(set(found)) == len(found):
        return found
    width = len(str(len(found) - 1))
    return [f"{i:0{width}d}:{name}" for i, name in enumerate(found)]


SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=,.+-_")
LONGEST = 80  # characters of a folder name kept from the setting's name; a hash after it adds 9


def folder_names(names: list[str]) -> list[str]:
    """Each setting's name as a file or folder name (pictures/gallery-<it>.png, <it>/, seeds/<it>/): its characters
    other than letters, digits and ``=,.+-_`` as ``_`` (``data=dd/b.csv``: ``data=dd_b.csv``, ``0:lr=0.1``:
    ``0_lr=0.1``), no leading dot, its middle cut out past LONGEST characters. Where two of a sweep's names would
    then be alike (also on a file system that ignores case), those that changed get ``-`` and a hash of the whole
    name after them, and if that is not enough, all of them: names that differ give names that differ."""
    def safe(name: str) -> str:
        text = "".join(c if c in SAFE else "_" for c in name)
        text = "_" + text[1:] if text.startswith(".") else text
        return text if len(text) <= LONGEST else text[:LONGEST // 2 - 1] + ".." + text[-(LONGEST // 2 - 1):]

    def hashed(name: str, text: str) -> str:
        return text + "-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]

    def alike(texts: list[str]) -> set[str]:
        count: dict[str, int] = {}
        for t in texts:
            count[t.lower()] = count.get(t.lower(), 0) + 1
        return {t for t, n in count.items() if n > 1}

    out = [safe(n) for n in names]
    twins = alike(out)
    out = [hashed(n, t) if t.lower() in twins and t != n else t for n, t in zip(names, out)]  # changed ones first
    twins = alike(out)
    out = [hashed(n, t) if t.lower() in twins else t for n, t in zip(names, out)]  # hello.csv, HELLO.csv
    if alike(out):  # two hashes alike: numbered, as unique_names does
        out = [f"{i}-{t}" for i, t in enumerate(out)]
    return out


def runs(settings: list[dict], seeds: list[int], base: TrainConfig) -> list[Run]:
    """Setting-major: run s·S + i is setting s with seeds[i]; each config as train.py would run it."""
    out = []
    for s, values in enumerate(settings):
        for seed in seeds:
            out.append(Run(len(out), s, seed, TrainConfig(**{**base.as_dict(), **values, "seed": seed})))
    return out


def check_seeds(seeds) -> list[int]:
    """The seeds as a list of plain ints (a range, a tuple, a NumPy array taken), or a one-line ConfigError.
    Python's ints are taken as they are, in a few passes over the list (10⁷ seeds: ~1 s; one by one, 30 s)."""
    if isinstance(seeds, (list, tuple, range)) or getattr(seeds, "ndim", None) == 1 and hasattr(seeds, "tolist"):
        plain_ints = isinstance(seeds, range) or set(map(type, seeds)) <= {int}
        seeds = list(seeds) if plain_ints else [plain(s, ["int"]) for s in seeds]
    else:
        raise ConfigError("seeds", f"expected a list of integers, got {short(seeds)}")
    if not seeds:
        raise ConfigError("seeds", "must be at least 1, got 0")
    if not (plain_ints and 0 <= min(seeds) and max(seeds) < 2**32):
        bad = [s for s in seeds if not _is(s, "int") or not 0 <= s < 2**32]
        if bad:
            raise ConfigError("seeds", f"each seed must be an integer in [0, 2**32), got {short(bad[0])}")
    if len(set(seeds)) != len(seeds):
        seen: set[int] = set()
        twice = next(s for s in seeds if s in seen or seen.add(s))
        raise ConfigError("seeds", f"seed {twice} is given twice")
    return seeds
