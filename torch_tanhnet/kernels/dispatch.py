"""The one place that decides which implementation serves a call, and why.

Every public function (:mod:`torch_tanhnet.functional`) checks its inputs once, then asks here:

- **the reference Functions** (``TanhNetFunction``, ``BCEWithLogitsFunction``) where a user asks for them
  (:func:`reference_equations`, ``TORCH_TANHNET_REFERENCE=1``), under ``torch.compile`` and ``torch.func``
  transforms, which need their ``setup_context`` form and compose with both, and inside a
  ``torch.autograd.forward_ad.dual_level``, whose dual tensors need their ``jvp`` (the fast Functions have
  none), inside a ``TorchDispatchMode`` (make_fx,
  FakeTensorMode, FlopCounterMode: every op must pass through it), and for tensors whose memory the
  kernels cannot read (a FakeTensor, a ``__torch_dispatch__`` wrapper subclass: :func:`plain`);
  :func:`implementation` and :func:`fused_implementation` answer None;
- **the C kernels** (:class:`~torch_tanhnet.kernels.c_kernels.CKernels`) for float32 and float64
  on the CPU, where :mod:`~torch_tanhnet.kernels.cpu` could build them;
- **the Triton kernel** (:mod:`~torch_tanhnet.kernels.triton_kernel`) for the training path on
  CUDA, for small shapes where Triton is installed;
- **torch ops** (:mod:`~torch_tanhnet.kernels.torch_ops`) everywhere else: the composed path on
  CUDA, other dtypes, no compiler, no Triton.

The fast Functions (:mod:`~torch_tanhnet.kernels.functions`) take the answer as their first
argument and call its methods; they hold no choice of their own. Each implementation computes
the same equations and is tested against the reference.
"""

from __future__ import annotations

import threading
import warnings

import torch

from ..checks import short
from ..context import compiling, dispatch_mode_active, forward_ad_active, tracing, transforms_active
from ..switches import switch
from . import cpu, torch_ops
from .c_kernels import CKernels

Tensor = torch.Tensor
_PRECISION = {torch.float32: "float32", torch.float64: "float64"}
_wrapped: dict[object, CKernels] = {}  # one wrapper per loaded library


_default: list[bool] = []  # [TORCH_TANHNET_REFERENCE, read outside compile]: on for every thread; read at the first
# call (a warning for an unreadable value then reaches the scripts' one-line warnings, set up after the import)
_local = threading.local()  # .stack: this thread's open reference_equations blocks, innermost last. Its own thread
# adds to it; a block closes from it, from its thread or (a generator finished elsewhere) from another, under the
# block's own lock. No module-wide lock: one deadlocked a signal handler that opened a block, and a child forked
# while another thread held it


class _WithParentheses(type):
    """``with reference_equations:`` (the class, not a block) said "'type' object does not support the context
    manager protocol": one line saying what to write."""

    def __enter__(cls):
        raise TypeError(f"{cls.__name__} opens a block with parentheses: with torch_tanhnet.{cls.__name__}():")

    def __exit__(cls, *exc):  # never reached: __enter__ raised
        return False


class reference_equations(metaclass=_WithParentheses):  # noqa: N801 - a context manager, named as torch.no_grad is
    """Run every call inside the block through the reference Functions: the handout's equations, line for line
    (:mod:`torch_tanhnet.network`, :mod:`torch_tanhnet.cost`, :mod:`torch_tanhnet.ensemble.function`), where the
    kernels would otherwise serve. For a class: change a line of a backward there and watch training change.

        with torch_tanhnet.reference_equations():
            model.loss(X, y).backward()     # TanhNetFunction.backward_equations, BCEWithLogitsFunction's

    The choice is made when a forward runs: a backward runs the Functions its forward chose, inside the block or
    not. A block holds for the thread that opened it, as ``torch.no_grad()`` does (a thread started inside it
    does not inherit it, nor do the threads torch's autograd engine runs a CUDA backward on: a forward that
    ``torch.utils.checkpoint`` recomputes there runs the kernels); ``TORCH_TANHNET_REFERENCE=1`` in the
    environment turns it on for every thread from the start (for the scripts: ``TORCH_TANHNET_REFERENCE=1 python
    scripts/train.py``). ``reference_equations(False)`` turns it off within a block. Blocks may close in any
    order (generators): each takes away only its own. Slower: the reference composes torch's ops. Under
    ``torch.compile`` the reference runs anyway: open a block outside the compiled function (inside, it is a graph
    break, which ``fullgraph=True`` refuses).
    """

    def __init__(self, on: bool = True) -> None:
        if callable(on):  # @reference_equations, without parentheses
            raise TypeError("reference_equations decorates with parentheses: @torch_tanhnet.reference_equations()")
        if not isinstance(on, bool):  # "off" would read as True
            raise TypeError(f"reference_equations takes True or False, got {short(on)}")
        self.on = on
        self.used = False  # entered or decorating: a block made and dropped did nothing (__del__ says so)
        self.stacks: list[list] = []  # the stacks its open entries are on, in the order entered
        self.lock = threading.RLock()  # one object shared by threads: their enters and exits one at a time
        # (re-entrant: a signal handler may open this block while its thread is inside it)

    def __del__(self) -> None:
        if not getattr(self, "used", True):  # reference_equations() alone on a line: the kernels ran on, silently
            warnings.warn("reference_equations() was made but never entered, so it changed nothing: open a block, "
                          "with torch_tanhnet.reference_equations(): ...", RuntimeWarning, stacklevel=2)

    def __enter__(self) -> None:
        self.used = True
        stack = _local.__dict__.setdefault("stack", [])
        with self.lock:
            self.stacks.append(stack)
            stack.append((self.on, self))  # the entry; one step, so an interrupt leaves it there or not at all

    def __exit__(self, *exc) -> None:
        # the entry on this thread's stack if it has one (one object may be open in several threads); else on the
        # stack it was put on (a generator whose block opened in one thread and closed in another)
        mine = _local.__dict__.get("stack")
        with self.lock:
            for k in sorted(range(len(self.stacks)), key=lambda k: (self.stacks[k] is not mine, -k)):
                stack = self.stacks[k]  # (by identity: two threads' stacks may hold equal entries)
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i][1] is self:
                        del stack[i]
                        del self.stacks[k]
                        return

    def __call__(self, fn):
        """As a decorator: ``fn`` runs inside a block. A generator or coroutine function is refused: its body runs
        after the call returns, outside the block (it did nothing, without a word); open the block inside it."""
        import functools
        import inspect

        self.used = True
        if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"reference_equations decorates plain functions; {fn.__qualname__} is a generator or "
                            "coroutine function, whose body runs after the call: open the block inside it")

        @functools.wraps(fn)
        def inside(*args, **kwargs):
            with reference_equations(self.on):
                return fn(*args, **kwargs)

        return inside


def reference_asked() -> bool:
    """Whether a user asked for the reference here: this thread's innermost open block, else the environment
    (~0.1 µs)."""
    stack = _local.__dict__.get("stack")
    if stack:
        try:
            return stack[-1][0]
        except IndexError:  # emptied meanwhile by a generator's block closing in another thread
            pass
    if len(_default) < 2 and not compiling():  # read, and a bad value warned about, outside torch.compile, whose
        _default[:] = [switch("TORCH_TANHNET_REFERENCE"), True]  # graph cannot hold a warning (fullgraph=True)
    elif not _default:  # first read under compile: silently, warned at the first eager call
        _default.append(switch("TORCH_TANHNET_REFERENCE", warn=False))
    return _default[0]


def reference_only() -> bool:
    """Whether this call must run the reference Functions: asked for (:func:`reference_equations`), or under
    torch.compile, a torch.func transform, forward-mode AD (dual tensors), a dispatch mode, or torch.jit.trace
    (whose graph of a kernel's Function, which takes the implementation, a Python object, as an argument, crashed
    the process with a segfault). Where PyTorch cannot run a Function right (nested forward mode, transforms inside
    torch.compile, torch.jit.trace), the reference's forward then runs as torch ops
    (:mod:`torch_tanhnet.function_limits`)."""
    return (reference_asked() or compiling() or transforms_active() or forward_ad_active() or dispatch_mode_active()
            or tracing())


_PLAIN_TYPES = frozenset((torch.Tensor, torch.nn.Parameter))
_has_storage = torch._C._has_storage


def plain(*tensors: Tensor) -> bool:
    """Whether these are all torch.Tensors or nn.Parameters themselves, whose memory the kernels read through
    their data pointers. Not a tensor subclass: a FakeTensor's pointer leads to no memory, a wrapper such as
    DTensor or TwoTensor holds its data in other tensors; those run the reference's torch ops, which every tensor
    type defines. About 0.35 µs for six."""
    return _PLAIN_TYPES.issuperset(map(type, tensors))


def readable(g: Tensor) -> bool:
    """Whether a gradient that reaches a backward is a plain tensor with memory of its own for the kernels to read:
    not one batched by a vmap (``torch.autograd.grad(..., is_grads_batched=True)``, ``jacobian(...,
    vectorize=True)``, gradcheck's batched check), which has no storage, nor one met inside a dispatch mode
    (:func:`dispatch_mode_active`). About 0.25 µs."""
    return type(g) in _PLAIN_TYPES and _has_storage(g) and not dispatch_mode_active()


def c_kernels(dtype: torch.dtype) -> CKernels | None:
    """The C kernels for ``dtype`` (float32, float64), built on first use; None where they cannot be had."""
    precision = _PRECISION.get(dtype)
    if precision is None:
        return None
    lib = cpu.kernels(precision)  # cached there
    if lib is None:
        return None
    wrapped = _wrapped.get(lib)
    if wrapped is None:
        wrapped = _wrapped[lib] = CKernels(lib)
    return wrapped


def implementation(t: Tensor, *others: Tensor):
    """What runs the composed path's Functions for ``t`` (X or z) and the call's other tensors: the C kernels on
    the CPU where they build, else torch ops; None: the reference Functions (also for tensors the kernels cannot
    read, :func:`plain`)."""
    if reference_only() or not plain(t, *others):
        return None
    if t.device.type == "cpu":
        return c_kernels(t.dtype) or torch_ops
    return torch_ops


class TritonOrTorchOps:
    """The Triton kernels, with the torch-ops schedule for a launch that failed (it warned once)."""

    @staticmethod
    def loss_and_gradients(X, U, b, W, c, y, need_X_bar):
        from . import triton_kernel

        found = triton_kernel.loss_and_gradients(X, U, b, W, c, y, need_X_bar)
        return found if found is not None else torch_ops.loss_and_gradients(X, U, b, W, c, y, need_X_bar)

    @staticmethod
    def ensemble_loss_and_gradients(X, U, b, W, c, y, need_X_bar):
        from . import triton_kernel

        found = triton_kernel.ensemble_loss_and_gradients(X, U, b, W, c, y, need_X_bar)
        return found if found is not None else torch_ops.ensemble_loss_and_gradients(X, U, b, W, c, y, need_X_bar)


def fused_implementation(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor):
    """What runs the training path (ε and every gradient in one pass) for these inputs; None: compose
    the reference Functions instead (torch.compile, torch.func, forward mode, tensors the kernels cannot
    read, or y needs a gradient, which the one pass does not give)."""
    if reference_only() or y.requires_grad or not plain(X, U, b, W, c, y):
        return None
    if X.device.type == "cpu":
        return c_kernels(X.dtype) or torch_ops
    if X.device.type == "cuda":
        from . import triton_kernel  # imported on first CUDA use: importing Triton takes a while

        if triton_kernel.usable(X, U):
            return TritonOrTorchOps
    return torch_ops


def ensemble_fused_implementation(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor):
    """What runs the ensemble's training path (:mod:`torch_tanhnet.ensemble`) for these inputs, U (K, H, D):
    as :func:`fused_implementation` chooses for one network (the C kernels on the CPU, the Triton kernels on
    CUDA, torch ops elsewhere); None: compose the ensemble's reference Functions (torch.compile, torch.func,
    forward mode, tensors the kernels cannot read, or y needs a gradient)."""
    return fused_implementation(X, U, b, W, c, y)


def ensemble_evaluate_implementation(X: Tensor):
    """What computes K networks' metrics (:func:`torch_tanhnet.sweep.metrics.measure`): the C kernels on the
    CPU where they build, torch ops elsewhere (and inside a dispatch mode, whose ops the kernels would go round);
    None where a user asked for the reference (:func:`reference_equations`): the caller runs the handout's lines.
    Evaluation takes no gradient, so the transforms' reasons do not apply."""
    if reference_asked():
        return None
    if X.device.type == "cpu" and plain(X) and not dispatch_mode_active():
        return c_kernels(X.dtype) or torch_ops
    return torch_ops
