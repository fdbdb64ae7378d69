"""The ensemble's training path: one pass finds every network's ε and gradients, as ``FusedLossFunction`` does for one.

:class:`EnsembleLossFunction` computes ε (K,) and, during the forward, every network's gradients
at ε̄_k = 1; its backward multiplies network k's gradients by ε̄_k. What runs the pass is
:func:`~torch_tanhnet.kernels.dispatch.ensemble_fused_implementation`'s choice:

- on the CPU (float32, float64), the C kernel ``tn_ensemble_fused_loss`` (``kernels/csrc``):
  network by network, each with the single network's one-pass job, or, for float32 networks of
  the handout's shape, 16 networks side by side in the lanes of the vector registers; the networks
  (and, when there are fewer networks than threads, their samples) split over the threads;
- on CUDA, for small shapes where Triton is installed, the single network's Triton kernels with
  a network index (:func:`torch_tanhnet.kernels.triton_kernel.ensemble_loss_and_gradients`):
  one launch, each network's samples over programs of its own;
- elsewhere (other dtypes, no C compiler, no Triton, wide networks), the same equations as
  batched torch ops (``baddbmm``, ``bmm``; :func:`torch_tanhnet.kernels.torch_ops.ensemble_loss_and_gradients`).

Under ``create_graph=True`` (a gradient penalty, a Hessian-vector product) the saved gradients
would carry no graph, so the backward recomputes them from the saved inputs (references, no
copies) through the reference's differentiable equations: second derivatives are exact. The
reference composition (:func:`~torch_tanhnet.ensemble.function.ensemble_reference_loss`) runs
instead under ``torch.compile``, ``torch.func`` transforms and when y needs a gradient.
"""

from __future__ import annotations

import torch

from ..amp import autocast_dtype
from ..kernels import torch_ops
from ..kernels.dispatch import ensemble_fused_implementation, readable
from .checks import check_ensemble_loss_inputs
from .function import EnsembleBCEFunction, EnsembleFunction, _ensemble_reference_loss, ensemble_reference_loss

Tensor = torch.Tensor


def _one_for_all(eps_bar: Tensor) -> float | None:
    """ε̄_k when it is one number for every network on the CPU (``loss.sum()`` gives ε̄ = 1 expanded: stride 0),
    else None. Reading it costs ~1 µs; scaling the four gradients by a vector instead cost ~20 µs here."""
    if eps_bar.device.type != "cpu" or eps_bar.dim() != 1 or eps_bar.stride(0) != 0 or not readable(eps_bar):
        return None
    return float(eps_bar[0])


def _scaled(eps_bar, X_bar, U_bar, b_bar, W_bar, c_bar, shared_X: bool):
    """Network k's gradients times ε̄_k; X shared by all networks gets Σ_k ε̄_k X̄_k."""
    one = _one_for_all(eps_bar) if X_bar is None else None
    if one == 1.0:  # loss.sum(): the gradients themselves (autograd takes them over once this node lets go)
        return None, U_bar, b_bar, W_bar, c_bar
    if one is not None:  # loss.mean() and the like: one factor for all                 θ̄ ε̄
        return None, *torch._foreach_mul([U_bar, b_bar, W_bar, c_bar], one)
    e = eps_bar.view(-1, 1)  # ε̄_k, one row per network   (K, 1)
    if X_bar is not None:
        X_bar = X_bar * e.unsqueeze(2)  # X̄_k ε̄_k        (K, N, D)
        if shared_X:
            X_bar = X_bar.sum(0)  #        Σ_k ε̄_k X̄_k    (N, D)
    return X_bar, U_bar * e.unsqueeze(2), b_bar * e, W_bar * e.unsqueeze(2), c_bar * e


def _differentiable_gradients(eps_bar, X, U, b, W, c, y, needs):
    """X̄, Ū, b̄, W̄, c̄ at ε̄ (K,) as differentiable functions of ε̄ and the inputs: the reference's equations."""
    z, H = EnsembleFunction.apply(X, U, b, W, c)  # z_k = tanh(X_k U_kᵀ + b_k) W_kᵀ + c_k       (K, N, 1), (K, N, H)
    z_bar, _ = EnsembleBCEFunction.backward_equations(eps_bar, z, y, (True, False))  # z̄_ki = ε̄_k (o_ki − y_ki)/N
    return EnsembleFunction.backward_equations(z_bar, None, X, U, W, H, needs)


class EnsembleLossFunction(torch.autograd.Function):
    """ε = EnsembleLossFunction.apply(impl, X, U, b, W, c, y): K networks' training path, gradients found in forward.

    X (N, D) or (K, N, D), U (K, H, D), b (K, H), W (K, 1, H), c (K, 1), y (N, 1) or (K, N, 1) -> ε (K,).
    ``impl`` is :func:`~torch_tanhnet.kernels.dispatch.ensemble_fused_implementation`'s answer.
    """

    @staticmethod
    def forward(ctx, impl, X, U, b, W, c, y):
        eps, grads, X_bar = impl.ensemble_loss_and_gradients(X, U, b, W, c, y, ctx.needs_input_grad[1])
        ctx.impl, ctx.shared_X = impl, X.dim() == 2
        # gradients at ε̄ = 1: K (H·D + 2H + 1) numbers, kept for the first backward to hand over (not saved
        # tensors: see backward); X̄ only if needed; the inputs themselves (references, no copies) for a backward
        # that is itself differentiated or comes a second time
        ctx.grads = grads
        ctx.save_for_backward(X_bar, X, U, b, W, c, y)
        return eps

    @staticmethod
    def backward(ctx, eps_bar):
        X_bar, X, U, b, W, c, y = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph=True: the saved gradients are numbers without a graph; recompute them as a graph
            return None, *_differentiable_gradients(eps_bar, X, U, b, W, c, y, ctx.needs_input_grad[1:6]), None
        # loss.sum() hands the gradients themselves on (_scaled), so they go to the first backward only, which
        # gives them away: .grad takes them without a copy. A second backward over a retained graph must not
        # return the same tensors again (a caller may have changed the first ones in place): it recomputes them.
        grads, ctx.grads = ctx.grads, None
        if grads is None:  # the same call as forward's, so the same numbers to the last bit
            grads = ctx.impl.ensemble_loss_and_gradients(X, U, b, W, c, y, ctx.needs_input_grad[1])[1]
        return None, *_scaled(eps_bar, X_bar, *grads, ctx.shared_X), None


def ensemble_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """ε (K,) of K networks: the fused pass, or the reference where it cannot serve. X (N, D) or (K, N, D), U (K, H,
    D), b (K, H), W (K, 1, H), c (K, 1), y (N, 1) or (K, N, 1), checked (one-line errors naming what was expected
    and what came: the kernels would read a mis-shaped tensor past its end)."""
    if autocast_dtype(X) is not None:  # as ensemble_reference_loss: the networks in its dtype, ε in float32
        return ensemble_reference_loss(X, U, b, W, c, y)
    check_ensemble_loss_inputs(X, U, b, W, c, y)
    return _ensemble_loss(X, U, b, W, c, y)


def _ensemble_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """:func:`ensemble_loss` without the checks, for callers that made them (``TanhNetEnsemble.loss``)."""
    impl = ensemble_fused_implementation(X, U, b, W, c, y)
    if impl is None:
        return _ensemble_reference_loss(X, U, b, W, c, y)
    return EnsembleLossFunction.apply(impl, X, U, b, W, c, y)


def ensemble_loss_value(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """ε (K,) under ``torch.no_grad()``, inputs checked by the caller: the fused pass where a kernel serves (its
    gradients are dropped), else the reference composition.

    On the CPU the fused pass is the quickest way to ε even so: at K = 1024, N = 256 (float32, two threads) it
    took 0.38-0.45 ms, the C kernels' forward-only evaluation 0.41-0.48 ms (network by network, where the fused
    pass runs 16 networks a vector; two interleaved rounds of five repeats), the reference's batched products
    6.4-7.1 ms.
    """
    impl = ensemble_fused_implementation(X, U, b, W, c, y)
    if impl is None or impl is torch_ops:
        return _ensemble_reference_loss(X, U, b, W, c, y)
    return impl.ensemble_loss_and_gradients(X, U, b, W, c, y, False)[0]
