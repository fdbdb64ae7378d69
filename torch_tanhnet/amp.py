"""Autocast: the network follows it as ``nn.Linear`` does, the cost as ``binary_cross_entropy_with_logits`` does.

Under ``torch.autocast`` PyTorch runs a Linear layer's product in the autocast dtype (bfloat16 on the CPU by
default) and the cost in float32. The hand-written Functions cannot simply be left to it: the products inside a
custom Function's forward are autocast, its backward's are not unless it runs in the region too, so a backward
outside it met bfloat16 beside float32 and failed. So the entry points (:class:`~torch_tanhnet.TanhNet`, the
ensemble, the public functions) cast here, outside the Functions, and run them with autocast off: forward and
backward in one dtype, each cast's gradient converted back to its parameter's dtype by autograd. Every
floating-point tensor is cast except float64 ones, as autocast does; a float64 X beside float32 weights is
then a dtype error, as it is for ``nn.Linear``.
"""

from __future__ import annotations

import contextlib

import torch

Tensor = torch.Tensor


def autocast_dtype(t: Tensor) -> torch.dtype | None:
    """The dtype autocast runs products in on ``t``'s device, or None when autocast is off there (0.2 µs), or
    ``t`` is not a tensor (the checks that follow say so)."""
    if not isinstance(t, Tensor):
        return None
    kind = t.device.type
    try:
        if not torch.is_autocast_enabled(kind):
            return None
        return torch.get_autocast_dtype(kind)
    except (RuntimeError, TypeError, AttributeError):  # a device type autocast does not know; torch < 2.4
        return _older_torch(kind)


def _older_torch(kind: str) -> torch.dtype | None:
    if kind == "cpu" and torch.is_autocast_cpu_enabled():
        return torch.get_autocast_cpu_dtype()
    if kind == "cuda" and torch.is_autocast_enabled():
        return torch.get_autocast_gpu_dtype()
    return None


def cast(dtype: torch.dtype, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Each floating-point tensor in ``dtype``, except float64 ones (autocast's rule); anything else as it is (what
    is not a tensor is left to the checks that follow, which say so in one line)."""
    return tuple(t.to(dtype) if isinstance(t, Tensor) and t.is_floating_point() and t.dtype != torch.float64 else t
                 for t in tensors)


def off(t: Tensor) -> torch.autocast | contextlib.nullcontext:
    """Autocast off on ``t``'s device (the CPU's for what is not a tensor): for the Functions run on tensors already
    cast, and for computations that state their own dtype (the Hessians), which autocast would run in part in low
    precision. Nothing on a device autocast does not know (the meta device, whose ``torch.autocast`` raises
    "unsupported scalarType")."""
    kind = t.device.type if isinstance(t, Tensor) else "cpu"
    return torch.autocast(kind, enabled=False) if _knows(kind) else contextlib.nullcontext()


_KNOWN: dict[str, bool] = {}  # a dict, not functools.cache, which torch.compile warns of ("silent incorrectness")


def _knows(kind: str) -> bool:
    """Whether autocast runs on the device type ``kind`` (torch < 2.4 cannot tell: the CPU's and CUDA's only)."""
    if kind not in _KNOWN:
        available = getattr(torch.amp, "is_autocast_available", None)
        _KNOWN[kind] = available(kind) if available is not None else kind in ("cpu", "cuda")
    return _KNOWN[kind]


def state(t: Tensor) -> tuple[str, torch.dtype] | None:
    """What a Function's ``setup_context`` keeps for its backward: (device type, dtype) under autocast, else None."""
    low = autocast_dtype(t)
    return None if low is None else (t.device.type, low)


def again(kept: tuple[str, torch.dtype] | None):
    """Autocast in a backward as it was in its forward (``torch.amp.custom_bwd``'s rule, for Functions called
    directly under autocast): a backward run outside the region computes in the forward's dtypes."""
    return contextlib.nullcontext() if kept is None else torch.autocast(kept[0], dtype=kept[1])

