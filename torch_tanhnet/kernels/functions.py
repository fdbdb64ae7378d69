"""The fast autograd Functions: the seed's maths, scheduled for speed, each tested against the reference.

``TanhNetFunction`` and ``BCEWithLogitsFunction`` map the seed line by line and stay the
reference. The Functions here compute the same equations; their first argument ``impl`` is
what :mod:`torch_tanhnet.kernels.dispatch` chose (the C kernels, the Triton kernel or torch
ops), and they call its methods without choosing anything themselves:

- :class:`FusedLossFunction`: the training path behind ``TanhNet.loss``. One pass over X
  and y computes ε *and* every gradient at ε̄ = 1 (the seed's whole backward, run during
  the forward); backward only multiplies the saved gradients by ε̄. Nothing of size N is
  kept for backward (X̄ only when X needs a gradient). First-order only: its gradients are
  numbers, not graphs, so differentiating them again raises. For higher derivatives use
  ``bce_with_logits(model(X), y)``.
- :class:`FastTanhNetFunction` and :class:`FastBCEWithLogitsFunction`: the composed
  path ``bce_with_logits(model(X), y)``, each forward and backward one pass of a kernel (or
  a few torch ops). When a backward is itself being differentiated (``create_graph=True``),
  they run the reference's differentiable ``backward_equations`` instead, so second
  derivatives stay exact.

These Functions use the classic ``forward(ctx, ...)`` form: they never run under
``torch.func`` (the dispatch sends those to the reference), and ``apply`` of a Function with
``setup_context`` binds its arguments through ``inspect.signature``, about 10 µs a call, a
tenth of a whole training step at N = 256.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ..cost import BCEWithLogitsFunction
from ..network import TanhNetFunction


def _scaled(ctx, eps_bar):
    """(∂ε/∂θ)·ε̄ for each input θ: every gradient is linear in ε̄. X̄ is None unless X needs a gradient;
    autograd drops the gradient of any parameter that needs none."""
    X_bar, *grads = ctx.saved_tensors
    return None, None if X_bar is None else X_bar * eps_bar, *torch._foreach_mul(grads, eps_bar), None


_scaled_once_differentiable = once_differentiable(_scaled)


class FusedLossFunction(torch.autograd.Function):
    """ε = FusedLossFunction.apply(impl, X, U, b, W, c, y): the training path, every gradient found in forward.

    ``impl`` is :func:`~torch_tanhnet.kernels.dispatch.fused_implementation`'s answer for X.
    """

    @staticmethod
    def forward(ctx, impl, X, U, b, W, c, y):
        eps, grads, X_bar = impl.loss_and_gradients(X, U, b, W, c, y, ctx.needs_input_grad[1])
        # gradients at ε̄ = 1, not activations: H·D + 2H + 1 numbers, and X̄ only if X needs one
        ctx.save_for_backward(X_bar, *grads)
        return eps

    @staticmethod
    def backward(ctx, eps_bar):
        if torch.is_grad_enabled():  # create_graph=True: the gradients are numbers; differentiating them raises
            return _scaled_once_differentiable(ctx, eps_bar)
        # the usual backward(): what @once_differentiable would do, without its ~5 µs of wrapping a step
        return _scaled(ctx, eps_bar)


class FastTanhNetFunction(torch.autograd.Function):
    """(z, H) = FastTanhNetFunction.apply(impl, X, U, b, W, c): TanhNetFunction, one kernel pass each way.

    ``impl`` is :func:`~torch_tanhnet.kernels.dispatch.implementation`'s answer for X.
    """

    @staticmethod
    def forward(ctx, impl, X, U, b, W, c):
        z, H = impl.forward(X, U, b, W, c)
        ctx.impl = impl
        ctx.save_for_backward(X, U, W, H)  # H is an output: differentiating backward flows back through it
        ctx.set_materialize_grads(False)
        return z, H

    @staticmethod
    def backward(ctx, z_bar, H_tilde):
        X, U, W, H = ctx.saved_tensors
        needs = ctx.needs_input_grad[1:]
        if torch.is_grad_enabled() or H_tilde is not None or z_bar is None or z_bar.dtype != X.dtype:
            # create_graph=True, a gradient reached H, or z̄ came in another dtype: the reference's equations
            adj = TanhNetFunction.backward_equations(z_bar, H_tilde, X, U, W, H, needs)
            return None, adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar
        return None, *ctx.impl.backward(z_bar, X, U, W, H, needs)


class FastBCEWithLogitsFunction(torch.autograd.Function):
    """ε = FastBCEWithLogitsFunction.apply(impl, z, y): BCEWithLogitsFunction, one kernel pass each way.

    ``impl`` is :func:`~torch_tanhnet.kernels.dispatch.implementation`'s answer for z.
    """

    @staticmethod
    def forward(ctx, impl, z, y):
        eps = impl.cost(z, y)
        ctx.impl = impl
        ctx.save_for_backward(z, y)
        return eps

    @staticmethod
    def backward(ctx, eps_bar):
        z, y = ctx.saved_tensors
        needs = ctx.needs_input_grad[1:]
        if torch.is_grad_enabled() or needs[1]:
            return None, *BCEWithLogitsFunction.backward_equations(eps_bar, z, y, needs)  # differentiable
        return None, ctx.impl.cost_backward(z, y, eps_bar), None
