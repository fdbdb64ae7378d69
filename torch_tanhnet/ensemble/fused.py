"""The ensemble's training path: one pass finds every network's ε and gradients, as ``FusedLossFunction`` does for one.

:class:`EnsembleLossFunction` computes ε (K,) and, during the forward, every network's gradients
at ε̄_k = 1; its backward multiplies network k's gradients by ε̄_k. It runs:

- on the CPU (float32, float64), the C kernel ``tn_ensemble_fused_loss`` (``csrc/tanhnet_kernels.c``):
  network by network, each with the single network's one-pass job, the networks (and, when there are
  fewer networks than threads, their samples) split over the threads;
- elsewhere (CUDA, other dtypes, no C compiler), the same equations as batched torch ops
  (``baddbmm``, ``bmm``) with no graph. There is no Triton kernel for K networks yet.

First-order only, as ``FusedLossFunction``: under ``create_graph=True`` its gradients are numbers,
and differentiating them raises. For second derivatives use the reference composition
(:func:`~torch_tanhnet.ensemble.function.ensemble_reference_loss`), which :func:`ensemble_loss`
also runs under ``torch.compile``, ``torch.func`` transforms and when y needs a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..fast import SAMPLES_PER_THREAD, _check, _compiling, _ptr, _transforms_active, kernel_for
from .function import ensemble_reference_loss, per_network

Tensor = torch.Tensor
UNITS_PER_THREAD = 4  # with fewer networks than this many per thread, each network's samples are split too


def schedule(K: int, N: int) -> tuple[int, int]:
    """(threads, splits) for the C kernel: a thread per SAMPLES_PER_THREAD samples of all K networks (at most
    torch's thread count), and each network cut into ``splits`` chunks when there are too few networks to share."""
    threads = max(1, min(torch.get_num_threads(), K * N // SAMPLES_PER_THREAD))
    if threads == 1 or K >= UNITS_PER_THREAD * threads:
        return threads, 1
    return threads, -(-UNITS_PER_THREAD * threads // K)


def loss_and_gradients(lib, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor,
                       need_X_bar: bool) -> tuple[Tensor, list[Tensor], Tensor | None]:
    """ε (K,), [Ū (K, H, D), b̄ (K, H), W̄ (K, 1, H), c̄ (K, 1)] at ε̄ = 1, and X̄ (K, N, D) or None.

    X (N, D) or (K, N, D), y (N, 1) or (K, N, 1). X̄ is network k's own X̄ in row k even when
    X is shared (the caller sums it with the weights ε̄_k). ``lib``: the C kernels, or None for torch ops.
    """
    if lib is None:
        return _torch_loss_and_gradients(X, U, b, W, c, y, need_X_bar)
    K, H, D = U.shape
    N = X.shape[-2]
    X, y, U, b, W, c = (t.contiguous() for t in (X, y, U, b, W, c))
    eps = U.new_empty(K)
    grads = [U.new_empty(K, H, D), U.new_empty(K, H), U.new_empty(K, 1, H), U.new_empty(K, 1)]
    X_bar = U.new_empty(K, N, D) if need_X_bar else None
    threads, splits = schedule(K, N)
    _check(lib.tn_ensemble_fused_loss(X.data_ptr(), N * D if X.dim() == 3 else 0, y.data_ptr(),
                                      N if y.dim() == 3 else 0, U.data_ptr(), b.data_ptr(), W.data_ptr(),
                                      c.data_ptr(), K, N, D, H, _ptr(X_bar), eps.data_ptr(),
                                      *(g.data_ptr() for g in grads), splits, threads))
    return eps, grads, X_bar


@torch.no_grad()
def _torch_loss_and_gradients(X, U, b, W, c, y, need_X_bar: bool):
    """The same pass in batched torch ops (CUDA, and CPUs without the kernels)."""
    K, N = U.shape[0], X.shape[-2]
    Xk = per_network(X, K)
    H = torch.baddbmm(b.unsqueeze(1), Xk, U.mT).tanh_()  # H_k = tanh(X_k U_kᵀ + b_k)        (K, N, H)
    z = torch.baddbmm(c.unsqueeze(1), H, W.mT)  #           z_k = H_k W_kᵀ + c_k              (K, N, 1)
    yk = y.expand_as(z)
    eps = F.binary_cross_entropy_with_logits(z, yk, reduction="none").mean(dim=(1, 2))  # ε_k   (K,)
    z_bar = torch.sigmoid(z).sub_(yk).div_(N)  #             z̄_k = (o_k − y_k)/N              (K, N, 1)
    H_bar = z_bar * W  #                                     H̄_k = z̄_k W_k                    (K, N, H)
    G_bar = torch.addcmul(H_bar, H_bar, H * H, value=-1)  #  Ḡ_k = H̄_k ⊙ (1 − H_k²)           (K, N, H)
    U_bar = torch.bmm(G_bar.mT, Xk)  #                       Ū_k = Ḡ_kᵀX_k                    (K, H, D)
    b_bar = G_bar.sum(1)  #                                  b̄_k = Ḡ_kᵀ1                      (K, H)
    W_bar = torch.bmm(z_bar.mT, H)  #                        W̄_k = z̄_kᵀH_k                    (K, 1, H)
    c_bar = z_bar.sum(1)  #                                  c̄_k = z̄_kᵀ1                      (K, 1)
    X_bar = torch.bmm(G_bar, U) if need_X_bar else None  #   X̄_k = Ḡ_k U_k                    (K, N, D)
    return eps, [U_bar, b_bar, W_bar, c_bar], X_bar


def _scaled(ctx, eps_bar):
    """Network k's gradients times ε̄_k; X shared by all networks gets Σ_k ε̄_k X̄_k."""
    X_bar, U_bar, b_bar, W_bar, c_bar = ctx.saved_tensors
    e = eps_bar.view(-1, 1)  # ε̄_k, one row per network   (K, 1)
    if X_bar is not None:
        X_bar = X_bar * e.unsqueeze(2)  # X̄_k ε̄_k        (K, N, D)
        if ctx.shared_X:
            X_bar = X_bar.sum(0)  #        Σ_k ε̄_k X̄_k    (N, D)
    grads = (U_bar * e.unsqueeze(2), b_bar * e, W_bar * e.unsqueeze(2), c_bar * e)
    return None, X_bar, *grads, None


_scaled_once_differentiable = once_differentiable(_scaled)


class EnsembleLossFunction(torch.autograd.Function):
    """ε = EnsembleLossFunction.apply(lib, X, U, b, W, c, y): K networks' training path, gradients found in forward.

    ``lib`` is the C kernels for X (:func:`~torch_tanhnet.fast.kernel_for`) or None (torch ops).
    """

    @staticmethod
    def forward(ctx, lib, X, U, b, W, c, y):
        eps, grads, X_bar = loss_and_gradients(lib, X, U, b, W, c, y, need_X_bar=ctx.needs_input_grad[1])
        ctx.shared_X = X.dim() == 2
        ctx.save_for_backward(X_bar, *grads)  # gradients at ε̄ = 1: K (H·D + 2H + 1) numbers, X̄ only if needed
        return eps

    @staticmethod
    def backward(ctx, eps_bar):
        if torch.is_grad_enabled():  # create_graph=True: the gradients are numbers; differentiating them raises
            return _scaled_once_differentiable(ctx, eps_bar)
        return _scaled(ctx, eps_bar)


def ensemble_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """ε (K,) of K networks, checked by the caller: the fused pass, or the reference where it cannot serve."""
    if _compiling() or _transforms_active() or y.requires_grad:
        return ensemble_reference_loss(X, U, b, W, c, y)
    return EnsembleLossFunction.apply(kernel_for(X), X, U, b, W, c, y)
