"""Input checks for the ensemble, one-line messages naming what was expected and what came.

Only shapes, dtypes and devices are read (and the values of per-network settings, which are
small and given once), so nothing here forces a device synchronisation on the training path.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..checks import _format, _shape, check_floating, check_same_device_dtype

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


def check_ensemble_labels(y: Tensor, K: int, N: int, dtype: torch.dtype, device: torch.device) -> None:
    """y (N, 1) shared by the K networks or (K, N, 1) one set each (no other broadcasting), and at least one sample."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if tuple(y.shape) not in ((N, 1), (K, N, 1)):
        raise ValueError(f"y must have shape ({N}, 1) shared by the {K} networks or ({K}, {N}, 1) one set each, "
                         f"got {_shape(y)}")
    if y.dtype != dtype:
        raise TypeError(f"y must have the parameters' dtype {dtype}, got {y.dtype} (convert it with y.to({dtype}))")
    if y.device != device:
        raise ValueError(f"y is on device {y.device} but the parameters are on {device}; they must match")
    if N == 0:
        raise ValueError("the cost needs at least one sample, got N = 0")


def per_network(name: str, value, K: int, *, low: float = 0.0, below: float | None = None) -> Tensor:
    """A setting for each of K networks: a number (the same for all), or K numbers (a sequence or a tensor (K,)).

    Returns a float64 CPU tensor (K,). Each value must be finite, ≥ ``low`` and, if ``below``
    is given, < ``below``.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or {K} numbers (one per network), got {value!r}")
    if isinstance(value, numbers.Real):
        values = torch.full((K,), float(value), dtype=torch.float64)
    elif isinstance(value, torch.Tensor) or isinstance(value, (list, tuple)):
        t = value.detach() if isinstance(value, torch.Tensor) else None
        if t is None:
            if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
                raise TypeError(f"{name} must be a number or {K} numbers (one per network), got {value!r}")
            t = torch.tensor([float(v) for v in value], dtype=torch.float64)
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
        if t.dim() == 0:
            t = t.expand(K)
        if tuple(t.shape) != (K,):
            raise ValueError(f"{name} must be a number or {K} numbers (one per network), got shape {_shape(t)}")
        values = t.to("cpu", torch.float64).clone()
    else:
        raise TypeError(f"{name} must be a number or {K} numbers (one per network), got {type(value).__name__}")
    bad = [(k, v) for k, v in enumerate(values.tolist())
           if not math.isfinite(v) or v < low or (below is not None and v >= below)]
    if bad:
        k, v = bad[0]
        bound = f"in [{low}, {below})" if below is not None else f"≥ {low}"
        raise ValueError(f"{name} must be finite and {bound} for every network, got {v} for network {k}")
    return values
