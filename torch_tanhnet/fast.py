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
  kernel. When a backward is itself being differentiated (``create_graph=True``), they
  run the reference's differentiable ``backward_equations`` instead, so second
  derivatives stay exact.

The C kernels (``csrc/tanhnet_kernels.c``, :mod:`torch_tanhnet.extension`) serve float32
and float64 on the CPU. Elsewhere (CUDA, other dtypes, no compiler) the training path
runs the same one-pass schedule in torch ops, and the composed path uses the reference.
Under ``torch.compile`` and ``torch.func`` transforms every call goes to the reference
Functions, which compose with both.

These Functions use the classic ``forward(ctx, ...)`` form: they never run under
``torch.func`` (the dispatch above sends those to the reference), and ``apply`` of a
Function with ``setup_context`` binds its arguments through ``inspect.signature``, about
10 µs a call, a tenth of a whole training step at N = 256.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .cost import BCEWithLogitsFunction
from .extension import kernels
from .network import TanhNetFunction

Tensor = torch.Tensor
PARALLEL_MIN = 32768  # samples below which a kernel runs on one thread (thread start-up costs more)


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling and is_compiling())


def _transforms_active() -> bool:
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active and active())


def kernel_for(t: Tensor):
    """The C kernels for t's dtype when they can serve it (CPU, float32/float64, eager), else None."""
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64) or _compiling() \
            or _transforms_active():
        return None
    return kernels("float32" if t.dtype == torch.float32 else "float64")


def _threads(n: int) -> int:
    return 1 if n < PARALLEL_MIN else torch.get_num_threads()


def _ptr(t: Tensor | None):
    return None if t is None else t.data_ptr()


def _split(out: Tensor, H: int, D: int, dtype) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """[ε, Ū (H·D), b̄ (H), W̄ (H), c̄] in float64 -> ε (), Ū (H, D), b̄ (H,), W̄ (1, H), c̄ (1,) in dtype."""
    res = out.to(dtype)
    HD = H * D
    return res[0], res[1:1 + HD].view(H, D), res[1 + HD:1 + HD + H], res[1 + HD + H:1 + HD + 2 * H].view(1, H), \
        res[1 + HD + 2 * H:]


def _check(status: int) -> None:
    if status != 0:
        raise MemoryError("torch-tanhnet: a CPU kernel could not allocate its working buffers")


def loss_and_gradients(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor, need_X_bar: bool):
    """ε and (X̄ or None, Ū, b̄, W̄, c̄) at ε̄ = 1, computed together without autograd."""
    N, D = X.shape
    H = U.shape[0]
    lib = kernel_for(X)
    if lib is not None:
        X, y = X.contiguous(), y.contiguous()
        U, b, W, c = U.contiguous(), b.contiguous(), W.contiguous(), c.contiguous()
        X_bar = torch.empty_like(X) if need_X_bar else None
        out = torch.empty(2 + H * D + 2 * H, dtype=torch.float64)
        _check(lib.tn_fused_loss(X.data_ptr(), y.data_ptr(), U.data_ptr(), b.data_ptr(), W.data_ptr(),
                                 c.data_ptr(), N, D, H, _ptr(X_bar), out.data_ptr(), _threads(N)))
        eps, U_bar, b_bar, W_bar, c_bar = _split(out, H, D, X.dtype)
        return eps, (X_bar, U_bar, b_bar, W_bar, c_bar)
    # the same schedule in torch ops: the reference's forward and backward equations, no graph
    with torch.no_grad():
        z, Hid = TanhNetFunction.forward(X, U, b, W, c)
        eps = BCEWithLogitsFunction.forward(z, y)
        z_bar, _ = BCEWithLogitsFunction.backward_equations(torch.ones_like(eps), z, y, (True, False))
        adj = TanhNetFunction.backward_equations(z_bar, None, X, U, W, Hid, (need_X_bar, True, True, True, True))
    return eps, (adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar)


class FusedLossFunction(torch.autograd.Function):
    """ε = FusedLossFunction.apply(X, U, b, W, c, y): the training path, every gradient found in forward."""

    @staticmethod
    def forward(ctx, X, U, b, W, c, y):
        eps, grads = loss_and_gradients(X, U, b, W, c, y, need_X_bar=ctx.needs_input_grad[0])
        ctx.has_X_bar = grads[0] is not None
        ctx.save_for_backward(*(g for g in grads if g is not None))  # gradients at ε̄ = 1, not activations
        return eps

    @staticmethod
    @once_differentiable
    def backward(ctx, eps_bar):
        saved = list(ctx.saved_tensors)
        grads = ([saved.pop(0)] if ctx.has_X_bar else [None]) + saved
        # every gradient is linear in ε̄: (∂ε/∂θ)·ε̄
        return (*(None if g is None or not need else g * eps_bar
                  for g, need in zip(grads, ctx.needs_input_grad[:5])), None)


class FastTanhNetFunction(torch.autograd.Function):
    """(z, H) = FastTanhNetFunction.apply(X, U, b, W, c): TanhNetFunction, one kernel pass each way."""

    @staticmethod
    def forward(ctx, X, U, b, W, c):
        lib = kernels("float32" if X.dtype == torch.float32 else "float64")
        X, U, b, W, c = X.contiguous(), U.contiguous(), b.contiguous(), W.contiguous(), c.contiguous()
        N, D = X.shape
        z = X.new_empty(N, 1)
        H = X.new_empty(N, U.shape[0])
        _check(lib.tn_forward(X.data_ptr(), U.data_ptr(), b.data_ptr(), W.data_ptr(), c.data_ptr(), N, D,
                              U.shape[0], z.data_ptr(), H.data_ptr(), _threads(N)))
        ctx.save_for_backward(X, U, W, H)  # H is an output: differentiating backward flows back through it
        ctx.set_materialize_grads(False)
        return z, H

    @staticmethod
    def backward(ctx, z_bar, H_tilde):
        X, U, W, H = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if torch.is_grad_enabled() or H_tilde is not None or z_bar is None or z_bar.dtype != X.dtype:
            adj = TanhNetFunction.backward_equations(z_bar, H_tilde, X, U, W, H, needs)  # differentiable
            return adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar
        lib = kernels("float32" if X.dtype == torch.float32 else "float64")
        N, D = X.shape
        Hn = U.shape[0]
        z_bar = z_bar.contiguous()
        X_bar = torch.empty_like(X) if needs[0] else None
        out = torch.empty(2 + Hn * D + 2 * Hn, dtype=torch.float64)
        _check(lib.tn_backward(X.data_ptr(), U.data_ptr(), W.data_ptr(), H.data_ptr(), z_bar.data_ptr(), N, D, Hn,
                               _ptr(X_bar), out.data_ptr(), _threads(N)))
        _, U_bar, b_bar, W_bar, c_bar = _split(out, Hn, D, X.dtype)
        return X_bar, *(g if need else None for g, need in zip((U_bar, b_bar, W_bar, c_bar), needs[1:]))


class FastBCEWithLogitsFunction(torch.autograd.Function):
    """ε = FastBCEWithLogitsFunction.apply(z, y): BCEWithLogitsFunction, one kernel pass each way."""

    @staticmethod
    def forward(ctx, z, y):
        lib = kernels("float32" if z.dtype == torch.float32 else "float64")
        z, y = z.contiguous(), y.contiguous()
        out = torch.empty(2, dtype=torch.float64)  # the kernel's [ε, c̄] layout with H = D = 0
        _check(lib.tn_cost(z.data_ptr(), y.data_ptr(), z.numel(), 0.0, None, out.data_ptr(), _threads(z.numel())))
        ctx.save_for_backward(z, y)
        return out.to(z.dtype)[0]

    @staticmethod
    def backward(ctx, eps_bar):
        z, y = ctx.saved_tensors
        if torch.is_grad_enabled() or ctx.needs_input_grad[1]:
            return BCEWithLogitsFunction.backward_equations(eps_bar, z, y, ctx.needs_input_grad)  # differentiable
        lib = kernels("float32" if z.dtype == torch.float32 else "float64")
        z_bar = torch.empty_like(z)
        out = torch.empty(2, dtype=torch.float64)  # the kernel's [ε, c̄] layout with H = D = 0
        _check(lib.tn_cost(z.data_ptr(), y.data_ptr(), z.numel(), eps_bar.item(), z_bar.data_ptr(), out.data_ptr(),
                           _threads(z.numel())))
        return z_bar, None
