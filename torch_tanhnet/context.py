"""What a call runs under: torch.compile, torch.func's transforms, forward-mode AD, a dispatch mode, torch.jit.trace.

The dispatch (:mod:`torch_tanhnet.kernels.dispatch`) and the limits of custom Functions
(:mod:`torch_tanhnet.function_limits`) ask these questions on every call, so each is one cheap read of torch's state.
"""

from __future__ import annotations

import torch
from torch.autograd import forward_ad as _forward_ad

_interpreters = getattr(torch._C._functorch, "get_interpreter_stack", lambda: None)
_JVP = torch._C._functorch.TransformType.Jvp
_DIFFERENTIATING = (torch._C._functorch.TransformType.Grad, _JVP)


def compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling and is_compiling())


def transforms_active() -> bool:
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active and active())


def forward_ad_active() -> bool:
    """Inside a ``torch.autograd.forward_ad.dual_level``: only there can an input be a dual tensor.

    ``dual_level`` is not a ``torch.func`` transform (:func:`transforms_active` is False under it);
    the level it enters is ``forward_ad._current_level`` (−1 outside, where ``make_dual`` refuses
    to run). One module attribute read, about 10 ns, where asking each input for its tangent
    (``forward_ad.unpack_dual``) would cost µs.
    """
    return _forward_ad._current_level >= 0


_dispatch_modes = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 0)


def dispatch_mode_active() -> bool:
    """Inside a ``TorchDispatchMode`` (``make_fx``'s tracing, ``FakeTensorMode``, ``FlopCounterMode``, a logging
    mode): every op must pass through the mode, and the kernels, reading memory directly, would go round it
    (make_fx recorded only their empty outputs, so its graph replayed uninitialised memory; under FakeTensorMode
    ``contiguous()`` handed them a fake tensor without memory: a crash). About 0.07 µs."""
    return _dispatch_modes() > 0


tracing = torch._C._is_tracing  # inside torch.jit.trace; about 0.05 µs (torch's own function: no call around it)


def nested_forward() -> bool:
    """Inside a forward-mode transform inside another: two or more of torch.func's Jvp levels (jvp, jacfwd; a
    ``torch.autograd.forward_ad.dual_level`` cannot hold one, nor nest), or where the levels cannot be read. About
    1 µs under transforms, 0.05 µs elsewhere."""
    if not transforms_active():
        return False
    stack = _interpreters()
    if stack is None:  # a torch that does not show its levels: assume nested, where the torch ops are right anyway
        return True
    return sum(1 for level in stack if level.key() == _JVP) >= 2


def differentiating() -> bool:
    """Inside a torch.func transform that takes a derivative (grad, vjp, jacrev, jvp, jacfwd), not vmap alone; also
    where the levels cannot be read. About 1 µs under transforms."""
    if not transforms_active():
        return False
    stack = _interpreters()
    return stack is None or any(level.key() in _DIFFERENTIATING for level in stack)
