"""The fast autograd Functions: the handout's maths, scheduled for speed, each tested against the reference.

``TanhNetFunction`` and ``BCEWithLogitsFunction`` map the handout line by line and stay the
reference. The Functions here compute the same equations; their first argument ``impl`` is
what :mod:`torch_tanhnet.kernels.dispatch` chose (the C kernels, the Triton kernel or torch
ops), and they call its methods without choosing anything themselves:

- :class:`FusedLossFunction`: the training path behind ``TanhNet.loss``. One pass over X
  and y computes ε *and* every gradient at ε̄ = 1 (the handout's whole backward, run during
  the forward); backward only multiplies the saved gradients by ε̄. Nothing of size N is
  computed for backward (X̄ only when X needs a gradient); X and y are saved as references,
  no copies. When the backward is itself being differentiated (``create_graph=True``: a
  gradient penalty, a Hessian-vector product), those saved numbers would carry no graph,
  so it recomputes the gradients from X, y and the parameters through the reference's
  differentiable ``backward_equations``: second derivatives are exact, as on the composed path.
  Like any op that saves its inputs, it needs X and y unchanged in place until backward.
- :class:`FastTanhNetFunction` and :class:`FastBCEWithLogitsFunction`: the composed
  path ``bce_with_logits(model(X), y)``, each forward and backward one pass of a kernel (or
  a few torch ops). When a backward is itself being differentiated (``create_graph=True``),
  they run the reference's differentiable ``backward_equations`` instead, so second
  derivatives stay exact; so they do for a gradient batched by a vmap (``is_grads_batched``,
  ``jacobian(..., vectorize=True)``), which has no memory for a kernel to read.

These Functions use the classic ``forward(ctx, ...)`` form: they never run under
``torch.func`` (the dispatch sends those to the reference), and ``apply`` of a Function with
``setup_context`` binds its arguments through ``inspect.signature``, about 10 µs a call, a
tenth of a whole training step at N = 256.
"""

from __future__ import annotations

import torch

from ..cost import BCEWithLogitsFunction
from ..network import TanhNetFunction
from .dispatch import readable


class FusedLossFunction(torch.autograd.Function):
    """ε = FusedLossFunction.apply(impl, X, U, b, W, c, y): the training path, every gradient found in forward.

    ``impl`` is :func:`~torch_tanhnet.kernels.dispatch.fused_implementation`'s answer for X.
    """

    @staticmethod
    def forward(ctx, impl, X, U, b, W, c, y):
        eps, grads, X_bar = impl.loss_and_gradients(X, U, b, W, c, y, ctx.needs_input_grad[1])
        # gradients at ε̄ = 1, not activations: H·D + 2H + 1 numbers, and X̄ only if X needs one; the inputs
        # themselves (references, no copies) for a backward that is itself differentiated
        ctx.save_for_backward(X_bar, *grads, X, U, b, W, c, y)
        return eps

    @staticmethod
    def backward(ctx, eps_bar):
        X_bar, U_bar, b_bar, W_bar, c_bar, X, U, b, W, c, y = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True: the saved gradients are numbers without a graph; recompute them as a graph
            # through the reference's differentiable equations, so that second derivatives are exact
            return None, *_differentiable_gradients(eps_bar, X, U, b, W, c, y, ctx.needs_input_grad[1:6]), None
        # (∂ε/∂θ)·ε̄ for each input θ: every gradient is linear in ε̄. X̄ is None unless X needs a gradient;
        # autograd drops the gradient of any parameter that needs none.
        X_bar = None if X_bar is None else X_bar * eps_bar
        if not readable(eps_bar):  # ε̄ batched by a vmap (is_grads_batched): _foreach_mul has no batching rule
            return None, X_bar, U_bar * eps_bar, b_bar * eps_bar, W_bar * eps_bar, c_bar * eps_bar, None
        return None, X_bar, *torch._foreach_mul([U_bar, b_bar, W_bar, c_bar], eps_bar), None


def _differentiable_gradients(eps_bar, X, U, b, W, c, y, needs):
    """X̄, Ū, b̄, W̄, c̄ at ε̄ as differentiable functions of ε̄ and the inputs: the handout's forward and backward
    equations in the reference Functions (None where ``needs`` says no)."""
    z, H = TanhNetFunction.apply(X, U, b, W, c)  # z = tanh(X Uᵀ + b) Wᵀ + c, H = tanh(X Uᵀ + b)   (N, 1), (N, H)
    z_bar, _ = BCEWithLogitsFunction.backward_equations(eps_bar, z, y, (True, False))  # z̄ = ε̄ (σ(z) − y) / N
    adj = TanhNetFunction.backward_equations(z_bar, None, X, U, W, H, needs)  # W̄, c̄, H̄, Ḡ, Ū, b̄, X̄
    return adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar


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
        if (torch.is_grad_enabled() or H_tilde is not None or z_bar is None or z_bar.dtype != X.dtype
                or not readable(z_bar)):
            # create_graph=True, a gradient reached H, z̄ came in another dtype or batched by a vmap
            # (is_grads_batched, jacobian(vectorize=True)), which the kernels cannot read: the reference's equations
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
        if torch.is_grad_enabled() or needs[1] or not readable(eps_bar):  # also: ε̄ batched by a vmap
            return None, *BCEWithLogitsFunction.backward_equations(eps_bar, z, y, needs)  # differentiable
        return None, ctx.impl.cost_backward(z, y, eps_bar), None
