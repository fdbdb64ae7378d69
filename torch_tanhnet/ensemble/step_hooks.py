"""torch.optim's step hooks for the ensemble optimizers, without a profiler record on every call.

``torch.optim.Optimizer`` wraps each subclass's ``step`` (``Optimizer.profile_hook_step``) to run the
step hooks (``register_step_pre_hook`` / ``register_step_post_hook`` and the global
``register_optimizer_step_pre_hook`` / ``_post_hook``) inside a ``record_function`` region, and
``zero_grad`` opens one too. Entering and leaving such a region goes through the dispatcher even with no
profiler running: measured here, ~30 µs for ``step`` and ~12 µs for ``zero_grad`` in a training loop,
against ~180 µs for everything but the kernel in a whole step of 1024 networks (K = 16 to 1024, N = 256,
2-core CPU). :func:`with_step_hooks` runs the same hooks in the same order, with torch's own hook
tables, and opens the region only while a profiler is on (``torch.autograd._profiler_enabled()``).
"""

from __future__ import annotations

import contextlib
import functools
from itertools import chain

import torch
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks


def profiled(name: str):
    """A ``record_function(name)`` region while a profiler runs; else nothing at all."""
    if torch.autograd._profiler_enabled():
        return torch.autograd.profiler.record_function(name)
    return contextlib.nullcontext()


def with_step_hooks(step):
    """``step`` with torch.optim's step hooks, as ``Optimizer.profile_hook_step`` runs them. Marked ``hooked``,
    so that ``Optimizer.__init__`` does not wrap it again."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        with profiled(f"Optimizer.step#{type(self).__name__}.step"):
            for pre_hook in chain(_global_optimizer_pre_hooks.values(), self._optimizer_step_pre_hooks.values()):
                result = pre_hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"{step} must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {result}.")
                    args, kwargs = result
            out = step(self, *args, **kwargs)
            self._optimizer_step_code()
            for post_hook in chain(self._optimizer_step_post_hooks.values(), _global_optimizer_post_hooks.values()):
                post_hook(self, args, kwargs)
            return out

    wrapper.hooked = True
    return wrapper
