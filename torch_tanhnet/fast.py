"""Fast paths: the seed's maths, scheduled for speed, each tested against the reference Functions.

``TanhNetFunction`` and ``BCEWithLogitsFunction`` map the seed line by line and stay the
reference. The Functions here compute the same equations:

- :class:`FusedLossFunction`: the training path behind ``TanhNet.loss``. One pass over X
  and y computes ε *and* every gradient at ε̄ = 1 (the seed's whole backward, run during
  the forward); backward only multiplies the saved gradients by ε̄. Nothing of size N is
  kept for backward (X̄ only when X needs a gradient). First-order only
  (``once_differentiable``): its gradients are numbers, not graphs. For higher
  derivatives use ``bce_with_logits(model(X), y)``.
- :class:`FastTanhNetFunction` and :class:`FastBCEWithLogitsFunction`: the composed
  path ``bce_with_logits(model(X), y)``, each forward and backward one pass of a C
  kernel (or a few torch ops). When a backward is itself being differentiated (``create_graph=True``), they
  run the reference's differentiable ``backward_equations`` instead, so second
  derivatives stay exact.

The C kernels (``csrc/tanhnet_kernels.c``, :mod:`torch_tanhnet.extension`) serve float32
and float64 on the CPU; on CUDA the training path has a Triton kernel
(:mod:`torch_tanhnet.triton_kernel`). Elsewhere (the composed path on CUDA, other dtypes,
no compiler, no Triton) the same Functions run the same equations in few torch ops
(``_torch_forward``, ``_torch_backward``, torch's own fused cost op), on a par with eager
autograd. Under ``torch.compile``, ``torch.func`` transforms and forward-mode AD
(``torch.autograd.forward_ad``) every call goes to the reference Functions, which compose
with all three.

These Functions use the classic ``forward(ctx, ...)`` form: they never run under
``torch.func`` (the dispatch above sends those to the reference), and ``apply`` of a
Function with ``setup_context`` binds its arguments through ``inspect.signature``, about
10 µs a call, a tenth of a whole training step at N = 256.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd import forward_ad as _forward_ad
from torch.autograd.function import once_differentiable

from .cost import BCEWithLogitsFunction
from .extension import kernels
from .network import TanhNetFunction

Tensor = torch.Tensor
# The least work worth a thread: starting and joining one took ~100 µs on the 2-vCPU development
# machine (an idle vCPU wakes slowly), about 30k samples of the training kernel, so each thread
# gets at least 64k samples.
SAMPLES_PER_THREAD = 65536
PARALLEL_MIN = 2 * SAMPLES_PER_THREAD  # the least N that runs on more than one thread


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling and is_compiling())


def _transforms_active() -> bool:
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active and active())


def _forward_ad_active() -> bool:
    """Inside a ``torch.autograd.forward_ad.dual_level``: only there can an input be a dual tensor.

    The Functions here have no jvp, so such calls go to the reference. ``dual_level`` is not a
    ``torch.func`` transform (``_transforms_active`` is False under it); the level it enters is
    ``forward_ad._current_level`` (−1 outside, and ``make_dual`` refuses to run there). One module
    attribute read, about 10 ns, where asking each input for its tangent would cost µs.
    """
    return _forward_ad._current_level >= 0


_PRECISION = {torch.float32: "float32", torch.float64: "float64"}


def kernel_for(t: Tensor):
    """The C kernels for t's dtype when they can serve it (CPU, float32/float64), else None.

    Only for eager calls: the callers (:mod:`torch_tanhnet.functional`) send calls under
    ``torch.compile`` and ``torch.func`` to the reference before they ask.
    """
    precision = _PRECISION.get(t.dtype)
    if precision is None or t.device.type != "cpu":
        return None
    return kernels(precision)


def fused_kernel_for(X: Tensor, U: Tensor):
    """What runs the training path's one pass for X: the C kernels (CPU, :func:`kernel_for`), the
    Triton kernel's module :mod:`torch_tanhnet.triton_kernel` (CUDA), or None (torch ops)."""
    if X.device.type != "cuda":
        return kernel_for(X)
    from . import triton_kernel  # imported on first CUDA use: importing Triton takes a while

    return triton_kernel if triton_kernel.usable(X, U) else None


def _threads(n: int) -> int:
    return max(1, min(torch.get_num_threads(), n // SAMPLES_PER_THREAD))


def _ptr(t: Tensor | None):
    return None if t is None else t.data_ptr()


def _check(status: int) -> None:
    if status != 0:
        raise MemoryError("torch-tanhnet: a CPU kernel could not allocate its working buffers")


def _parameter_gradients(U: Tensor) -> list[Tensor]:
    """Empty Ū (H, D), b̄ (H,), W̄ (1, H), c̄ (1,) for a kernel to fill."""
    H, D = U.shape
    return [U.new_empty(H, D), U.new_empty(H), U.new_empty(1, H), U.new_empty(1)]


def loss_and_gradients(lib, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor,
                       need_X_bar: bool) -> tuple[Tensor, list[Tensor], Tensor | None]:
    """ε (), the parameters' gradients [Ū, b̄, W̄, c̄] at ε̄ = 1, and X̄ (N, D) or None.

    One pass of the C kernels ``lib`` (from :func:`fused_kernel_for`), or of the Triton kernel on
    CUDA; with ``lib`` None, the same equations in a few torch ops, with no graph. At N = 256
    the C kernel's work takes about 1 µs, so this glue is written for few torch calls (each
    allocation ~1 µs here).
    """
    if lib is None:
        return _torch_loss_and_gradients(X, U, b, W, c, y, need_X_bar)
    if X.is_cuda:  # lib is torch_tanhnet.triton_kernel; None back means it could not run here
        found = lib.loss_and_gradients(X, U, b, W, c, y, need_X_bar)
        return found if found is not None else _torch_loss_and_gradients(X, U, b, W, c, y, need_X_bar)
    N, D = X.shape
    X, y, U, b, W, c = X.contiguous(), y.contiguous(), U.contiguous(), b.contiguous(), W.contiguous(), c.contiguous()
    X_bar = torch.empty_like(X) if need_X_bar else None
    eps = X.new_empty(())
    grads = _parameter_gradients(U)
    _check(lib.tn_fused_loss(X.data_ptr(), y.data_ptr(), U.data_ptr(), b.data_ptr(), W.data_ptr(), c.data_ptr(),
                             N, D, U.shape[0], _ptr(X_bar), eps.data_ptr(), *(g.data_ptr() for g in grads),
                             _threads(N)))
    return eps, grads, X_bar


def _torch_forward(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """z (N, 1) and H (N, H) in three torch ops (no graph is recorded: call it under no_grad)."""
    H = torch.addmm(b, X, U.t()).tanh_()  # H = tanh(X Uᵀ + b)                         (N, H)
    z = torch.addmm(c, H, W.t())  #          z = H Wᵀ + c                               (N, 1)
    return z, H


def _torch_backward(z_bar: Tensor, X: Tensor, U: Tensor, W: Tensor, H: Tensor, needs) -> list[Tensor | None]:
    """[X̄, Ū, b̄, W̄, c̄] (None where ``needs`` says so) from z̄: the seed's backward in few passes.

    The reference's equations (``TanhNetFunction.backward_equations``), scheduled for speed:
    H̄ = z̄W is an outer product, so a broadcast (half the time of a matrix product here), and
    Ḡ takes one addcmul. Its callers run it with gradients off; a backward that is itself recorded
    (``create_graph=True``) runs the reference's equations instead, which also take H̃.
    """
    X_bar = U_bar = b_bar = None
    if any(needs[:3]):
        H_bar = z_bar * W  #                 H̄ = z̄W                                     (N, H)
        G_bar = torch.addcmul(H_bar, H_bar, H * H, value=-1)  # Ḡ = H̄ ⊙ (1 − H²)         (N, H)
        X_bar = G_bar.mm(U) if needs[0] else None  #     X̄ = ḠU                          (N, D)
        U_bar = G_bar.t().mm(X) if needs[1] else None  # Ū = ḠᵀX                         (H, D)
        b_bar = G_bar.sum(0) if needs[2] else None  #    b̄ = Ḡᵀ1                         (H,)
    W_bar = z_bar.t().mm(H) if needs[3] else None  #     W̄ = z̄ᵀH                         (1, H)
    c_bar = z_bar.sum(0) if needs[4] else None  #        c̄ = z̄ᵀ1                         (1,)
    return [X_bar, U_bar, b_bar, W_bar, c_bar]


@torch.no_grad()
def _torch_loss_and_gradients(X, U, b, W, c, y, need_X_bar: bool):
    """The fused schedule in torch ops (CUDA, and CPUs without the kernels): few passes, in place where free."""
    z, H = _torch_forward(X, U, b, W, c)
    eps = F.binary_cross_entropy_with_logits(z, y)  # ε = (1/N) Σ_i L(z_i, y_i), the same cost   ()
    z_bar = torch.sigmoid(z).sub_(y).div_(X.shape[0])  # z̄ = (o − y)/N                   (N, 1)
    X_bar, *grads = _torch_backward(z_bar, X, U, W, H, (need_X_bar, True, True, True, True))
    return eps, grads, X_bar


def _scaled(ctx, eps_bar):
    """(∂ε/∂θ)·ε̄ for each input θ: every gradient is linear in ε̄. X̄ is None unless X needs a gradient;
    autograd drops the gradient of any parameter that needs none."""
    X_bar, *grads = ctx.saved_tensors
    return None, None if X_bar is None else X_bar * eps_bar, *torch._foreach_mul(grads, eps_bar), None


class FusedLossFunction(torch.autograd.Function):
    """ε = FusedLossFunction.apply(lib, X, U, b, W, c, y): the training path, every gradient found in forward.

    ``lib`` is :func:`fused_kernel_for`'s answer for X (None: the torch-ops schedule).
    """

    @staticmethod
    def forward(ctx, lib, X, U, b, W, c, y):
        eps, grads, X_bar = loss_and_gradients(lib, X, U, b, W, c, y, need_X_bar=ctx.needs_input_grad[1])
        # gradients at ε̄ = 1, not activations: H·D + 2H + 1 numbers, and X̄ only if X needs one
        ctx.save_for_backward(X_bar, *grads)
        return eps

    @staticmethod
    def backward(ctx, eps_bar):
        if torch.is_grad_enabled():  # create_graph=True: the gradients are numbers; differentiating them raises
            return _scaled_once_differentiable(ctx, eps_bar)
        # the usual backward(): what @once_differentiable would do, without its ~5 µs of wrapping a step
        return _scaled(ctx, eps_bar)


_scaled_once_differentiable = once_differentiable(_scaled)


class FastTanhNetFunction(torch.autograd.Function):
    """(z, H) = FastTanhNetFunction.apply(lib, X, U, b, W, c): TanhNetFunction, one kernel pass each way.

    ``lib`` is :func:`kernel_for`'s answer for X; with None, the same equations in few torch ops.
    """

    @staticmethod
    def forward(ctx, lib, X, U, b, W, c):
        if lib is None:
            z, H = _torch_forward(X, U, b, W, c)
        else:
            X, U, b, W, c = X.contiguous(), U.contiguous(), b.contiguous(), W.contiguous(), c.contiguous()
            N, D = X.shape
            z = X.new_empty(N, 1)
            H = X.new_empty(N, U.shape[0])
            _check(lib.tn_forward(X.data_ptr(), U.data_ptr(), b.data_ptr(), W.data_ptr(), c.data_ptr(), N, D,
                                  U.shape[0], z.data_ptr(), H.data_ptr(), _threads(N)))
        ctx.lib = lib
        ctx.save_for_backward(X, U, W, H)  # H is an output: differentiating backward flows back through it
        ctx.set_materialize_grads(False)
        return z, H

    @staticmethod
    def backward(ctx, z_bar, H_tilde):
        X, U, W, H = ctx.saved_tensors
        needs = ctx.needs_input_grad[1:]
        lib = ctx.lib
        if torch.is_grad_enabled() or H_tilde is not None or z_bar is None or z_bar.dtype != X.dtype:
            adj = TanhNetFunction.backward_equations(z_bar, H_tilde, X, U, W, H, needs)  # differentiable
            return None, adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar
        if lib is None:
            return None, *_torch_backward(z_bar, X, U, W, H, needs)
        N, D = X.shape
        Hn = U.shape[0]
        z_bar = z_bar.contiguous()
        X_bar = torch.empty_like(X) if needs[0] else None
        grads = _parameter_gradients(U)
        _check(lib.tn_backward(X.data_ptr(), U.data_ptr(), W.data_ptr(), H.data_ptr(), z_bar.data_ptr(), N, D, Hn,
                               _ptr(X_bar), *(g.data_ptr() for g in grads), _threads(N)))
        return None, X_bar, *(g if need else None for g, need in zip(grads, needs[1:]))


class FastBCEWithLogitsFunction(torch.autograd.Function):
    """ε = FastBCEWithLogitsFunction.apply(lib, z, y): BCEWithLogitsFunction, one kernel pass each way.

    ``lib`` is :func:`kernel_for`'s answer for z; with None, torch's fused cost op and z̄ in place.
    """

    @staticmethod
    def forward(ctx, lib, z, y):
        if lib is None:
            eps = F.binary_cross_entropy_with_logits(z, y)  # the seed's ε, one op (tested equal)
        else:
            z, y = z.contiguous(), y.contiguous()
            eps = z.new_empty(())
            _check(lib.tn_cost(z.data_ptr(), y.data_ptr(), z.numel(), 0.0, None, eps.data_ptr(),
                               _threads(z.numel())))
        ctx.lib = lib
        ctx.save_for_backward(z, y)
        return eps

    @staticmethod
    def backward(ctx, eps_bar):
        z, y = ctx.saved_tensors
        needs = ctx.needs_input_grad[1:]
        if torch.is_grad_enabled() or needs[1]:
            return None, *BCEWithLogitsFunction.backward_equations(eps_bar, z, y, needs)  # differentiable
        if ctx.lib is None:
            return None, torch.sigmoid(z).sub_(y).mul_(eps_bar / z.numel()), None  # z̄ = ε̄ (o − y)/N
        z_bar = torch.empty_like(z)
        _check(ctx.lib.tn_cost(z.data_ptr(), y.data_ptr(), z.numel(), eps_bar.item(), z_bar.data_ptr(), None,
                               _threads(z.numel())))
        return None, z_bar, None
