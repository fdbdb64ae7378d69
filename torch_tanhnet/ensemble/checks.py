"""Input checks for the ensemble, one-line messages naming what was expected and what came.

Only shapes, dtypes and devices are read (and the values of per-network settings, which are
small and given once), so nothing here forces a device synchronisation on the training path.
"""

from __future__ import annotations

import array
import itertools
import math
import numbers
import reprlib
from collections.abc import Iterable

import torch

from ..checks import (
    PARAMETER_DTYPE_NAMES,
    PARAMETER_DTYPES,
    _format,
    _shape,
    check_dense,
    check_floating,
    check_same_device_dtype,
    one_line,
)

Tensor = torch.Tensor


def check_ensemble_parameters(U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[int, int, int]:
    """U (K, H, D), b (K, H), W (K, 1, H), c (K, 1), one dtype and device; returns (K, H, D)."""
    for name, t in (("U", U), ("b", b), ("W", W), ("c", c)):
        check_floating(name, t)
    if U.dim() != 3:
        raise ValueError(f"U must have shape (K, H, D), got {_shape(U)}")
    K, H, D = U.shape
    expected = {"b": (K, H), "W": (K, 1, H), "c": (K, 1)}
    for name, t in (("b", b), ("W", W), ("c", c)):
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"{name} must have shape {_format(expected[name])} to match U {_shape(U)}, "
                             f"got {_shape(t)}")
    check_same_device_dtype("U", U, (("b", b), ("W", W), ("c", c)))
    return K, H, D


def check_ensemble_data(X: Tensor, K: int, D: int, dtype: torch.dtype, device: torch.device) -> int:
    """X (N, D) shared by the K networks or (K, N, D) one set each, the parameters' dtype and device; returns N."""
    check_floating("X", X)
    if X.dim() not in (2, 3) or X.shape[-1] != D or (X.dim() == 3 and X.shape[0] != K):
        raise ValueError(f"X must have shape (N, {D}) shared by the {K} networks or ({K}, N, {D}) one set each, "
                         f"got {_shape(X)}")
    if X.dtype != dtype:
        raise TypeError(f"X has dtype {X.dtype} but the parameters have dtype {dtype}; they must match")
    if X.device != device:
        raise ValueError(f"X is on device {X.device} but the parameters are on {device}; they must match")
    return X.shape[-2]


def check_ensemble_inputs(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[int, int, int, int]:
    """The arguments of the ensemble's network; returns (K, N, H, D)."""
    K, H, D = check_ensemble_parameters(U, b, W, c)
    N = check_ensemble_data(X, K, D, U.dtype, U.device)
    return K, N, H, D


def check_ensemble_loss_inputs(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> tuple[int, int]:
    """The arguments of an ensemble's cost (X, U, b, W, c as :func:`check_ensemble_inputs` takes them, y (N, 1) or
    (K, N, 1)); returns (K, N)."""
    K, N, _, _ = check_ensemble_inputs(X, U, b, W, c)
    check_ensemble_labels(y, K, N, U.dtype, U.device)
    return K, N


def check_ensemble_labels(y: Tensor, K: int, N: int, dtype: torch.dtype, device: torch.device,
                          whose: str = "the parameters'") -> None:
    """y (N, 1) shared by the K networks or (K, N, 1) one set each (no other broadcasting), and at least one sample;
    of ``whose`` dtype and device."""
    check_dense("y", y)
    if tuple(y.shape) not in ((N, 1), (K, N, 1)):
        hint = " (reshape it: y.unsqueeze(-1))" if tuple(y.shape) in ((N,), (K, N)) else ""
        raise ValueError(f"y must have shape ({N}, 1) shared by the {K} networks or ({K}, {N}, 1) one set each, "
                         f"got {_shape(y)}{hint}")
    if y.dtype != dtype:
        raise TypeError(f"y must have {whose} dtype {dtype}, got {y.dtype} (convert it with y.to({dtype}))")
    if y.device != device:
        owners = whose.removesuffix("'")  # the parameters, the logits
        raise ValueError(f"y is on device {y.device} but {owners} are on {device}; they must match")
    if N == 0:
        raise ValueError("the cost needs at least one sample, got N = 0")


def check_module_parameters(k: int, D: int, H: int, U, b, W, c) -> None:
    """Network k given to ``from_modules``, a TanhNet(D, H): U (H, D), b (H,), W (1, H), c (1,), dense, of one real
    floating-point dtype and one device."""
    expected = {"U": (H, D), "b": (H,), "W": (1, H), "c": (1,)}
    params = (("U", U), ("b", b), ("W", W), ("c", c))
    for name, t in params:
        where = f"from_modules: network {k}'s {name}"
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where} must be a torch.Tensor, got {type(t).__name__}")
        if t.layout is not torch.strided or t.is_nested:
            came = "a nested tensor" if t.is_nested else t.layout
            raise TypeError(f"{where} must be a dense (strided) tensor, got {came}")
        if tuple(t.shape) != expected[name]:
            raise ValueError(f"{where} must have shape {_format(expected[name])} for a TanhNet({D}, {H}), "
                             f"got {_shape(t)}")
    if not any(U.dtype is d for d in PARAMETER_DTYPES):
        raise TypeError(f"from_modules: network {k}'s U must have a real floating-point dtype "
                        f"({PARAMETER_DTYPE_NAMES}), got {U.dtype}")
    for name, t in params[1:]:
        if t.dtype != U.dtype:
            raise TypeError(f"from_modules: network {k}'s {name} has dtype {t.dtype} but its U has {U.dtype}; "
                            "a network's four parameters must share one dtype")
        if t.device != U.device:
            raise ValueError(f"from_modules: network {k}'s {name} is on device {t.device} but its U is on "
                             f"{U.device}; a network's four parameters must share one device")


def readable(t: Tensor, expected: str) -> Tensor:
    """``t``, a tensor given for numbers (seeds, a setting per network, network numbers), as one whose numbers can be
    read: a sparse tensor's dense; else a one-line error, ``expected`` and what came. A meta tensor has a shape and no
    values, a nested one no single shape, a quantized one integers and a scale: torch's own errors came from deep
    inside ("Cannot copy out of meta tensor; no data!", "NestedTensorImpl doesn't support sizes. Please file an
    issue.", "load_scalar: invalid type")."""
    if t.is_meta:
        raise ValueError(f"{expected}, got a tensor on the meta device (a shape, no values)")
    if t.is_nested or t.is_quantized:
        raise TypeError(f"{expected}, got a {'nested' if t.is_nested else 'quantized'} tensor")
    if t.layout is not torch.strided:  # sparse: its numbers, dense (a sparse tensor has no data pointer to read)
        try:
            return t.to_dense()
        except (RuntimeError, NotImplementedError):
            raise TypeError(f"{expected}, got a tensor of layout {t.layout}") from None
    return t


def check_seeds(seeds, models: int) -> list[int]:
    """``seeds``: one int per network, each in torch.manual_seed's range [-2**63, 2**64 - 1]; returns a list."""
    if isinstance(seeds, torch.Tensor):
        seeds = readable(seeds, f"seeds must be {models} ints")
    if isinstance(seeds, torch.Tensor) or type(seeds).__module__ == "numpy":  # an array of integers: its numbers
        seeds = seeds.tolist() if getattr(seeds, "ndim", 1) == 1 else seeds
    if (isinstance(seeds, Iterable) and not isinstance(seeds, (str, bytes, dict, list, set, frozenset))
            and getattr(seeds, "ndim", 1) != 0):  # in order; a 0-d tensor or array is one number, refused below
        sized = hasattr(seeds, "__len__")
        seeds = list(itertools.islice(seeds, models + 1))  # an endless iterator: one too many, refused below
        if not sized and len(seeds) > models:
            raise ValueError(f"seeds must hold one seed per network, {models}, got more")
    if not isinstance(seeds, list) or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                              for s in seeds):
        raise TypeError(f"seeds must be a list of {models} ints, got {_short(seeds)}")
    seeds = [int(s) for s in seeds]
    if len(seeds) != models:
        raise ValueError(f"seeds must hold one seed per network, {models}, got {len(seeds)}")
    for k, s in enumerate(seeds):
        if not -2**63 <= s <= 2**64 - 1:
            raise ValueError(f"seeds must lie in torch.manual_seed's range [-2**63, 2**64 - 1], got {s} "
                             f"for network {k}")
    return seeds


_REPR = reprlib.Repr()
_REPR.maxlist = _REPR.maxtuple = 8
_REPR.maxlong = _REPR.maxstring = 40
_REPR.maxother = 60


def _short(value) -> str:
    """``value`` as repr writes it, long ones cut (a list of a million settings in a message would be megabytes),
    on one line."""
    return one_line(_REPR.repr(value))


def per_network(name: str, value, K: int, *, low: float = 0.0, below: float | None = None) -> Tensor:
    """A setting for each of K networks: a number (the same for all), or K numbers (a sequence, a tensor (K,) or a
    NumPy array (K,)).

    Returns a float64 CPU tensor (K,). Each value must be finite, ≥ ``low`` and, if ``below``
    is given, < ``below``. The values are checked with a few tensor ops (K = 1024: a few µs); a list is read once.
    """
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # a NumPy number or array: Python numbers
        if getattr(value, "ndim", 0) > 1:
            raise ValueError(f"{name} must be a number or {K} numbers (one per network), got a NumPy array of shape "
                             f"{_format(value.shape)}")
        value = value.tolist()
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or {K} numbers (one per network), got {_short(value)}")
    if isinstance(value, numbers.Real):
        try:
            values = torch.full((K,), float(value), dtype=torch.float64)
        except OverflowError:  # an int or Fraction past the largest float
            raise ValueError(f"{name} must be finite, got a number too large for a float ({_short(value)})") from None
    elif isinstance(value, torch.Tensor) or isinstance(value, (list, tuple)):
        t = value.detach() if isinstance(value, torch.Tensor) else None
        if t is None:
            if not set(map(type, value)) <= {float, int}:  # Python's floats and ints are read at once
                if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
                    raise TypeError(f"{name} must be a number or {K} numbers (one per network), got {_short(value)}")
            try:
                t = torch.frombuffer(array.array("d", value), dtype=torch.float64) if value else torch.zeros(0)
            except OverflowError:
                raise ValueError(f"{name} must be finite for every network, got a number too large for a "
                                 "float") from None
        t = readable(t, f"{name} must hold numbers")  # sparse: dense (aminmax has no sparse kernel)
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(K)
        if tuple(t.shape) != (K,):
            raise ValueError(f"{name} must be a number or {K} numbers (one per network), got shape {_shape(t)}")
        values = t.to("cpu", torch.float64).clone()
    else:
        raise TypeError(f"{name} must be a number or {K} numbers (one per network), got {type(value).__name__}")
    if K:
        lo, hi = torch.aminmax(values)  # NaN in either if any value is NaN
        lo, hi = float(lo), float(hi)
        if math.isfinite(lo) and math.isfinite(hi) and lo >= low and (below is None or hi < below):
            return values
        bad = ~torch.isfinite(values) | (values < low) | (values >= (math.inf if below is None else below))
        k = int(bad.nonzero()[0])  # the first bad value, for the message
        bound = f"in [{low}, {below})" if below is not None else f"≥ {low}"
        if isinstance(value, numbers.Real) or getattr(value, "ndim", None) == 0:  # one number, for every network
            raise ValueError(f"{name} must be finite and {bound}, got {float(values[k])}")
        raise ValueError(f"{name} must be finite and {bound} for every network, got {float(values[k])} for network {k}")
    return values
