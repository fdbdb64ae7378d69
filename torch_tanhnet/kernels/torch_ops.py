"""The fast paths' equations in a few torch ops: CUDA's composed path, other dtypes, CPUs without the C kernels.

The same contract as :class:`~torch_tanhnet.kernels.c_kernels.CKernels` and the Triton kernel, the
handout's equations scheduled for few passes, in place where free. No graph is recorded: the
Functions in :mod:`torch_tanhnet.kernels.functions` call these with gradients off, and a backward
that is itself recorded (``create_graph=True``) runs the reference's equations instead.
"""

from __future__ import annotations

import torch

from ..cost import sample_costs

Tensor = torch.Tensor


@torch.no_grad()
def forward(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """z (N, 1) and H (N, H) in three torch ops."""
    H = torch.addmm(b, X, U.t()).tanh_()  # H = tanh(X Uᵀ + b)                         (N, H)
    z = torch.addmm(c, H, W.t())  #          z = H Wᵀ + c                               (N, 1)
    return z, H


@torch.no_grad()
def backward(z_bar: Tensor, X: Tensor, U: Tensor, W: Tensor, H: Tensor, needs) -> list[Tensor | None]:
    """[X̄, Ū, b̄, W̄, c̄] (None where ``needs`` says so) from z̄: the handout's backward in few passes.

    The reference's equations (``TanhNetFunction.backward_equations``), scheduled for speed:
    H̄ = z̄W is an outer product, so a broadcast (half the time of a matrix product here), and
    Ḡ takes one addcmul.
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
def loss_and_gradients(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor,
                       need_X_bar: bool) -> tuple[Tensor, list[Tensor], Tensor | None]:
    """ε (), the parameters' gradients [Ū, b̄, W̄, c̄] at ε̄ = 1, and X̄ (N, D) or None."""
    z, H = forward(X, U, b, W, c)
    eps = sample_costs(z, y).mean()  # ε = (1/N) Σ_i L(z_i, y_i)   ()
    z_bar = torch.sigmoid(z).sub_(y).div_(X.shape[0])  # z̄ = (o − y)/N                   (N, 1)
    X_bar, *grads = backward(z_bar, X, U, W, H, (need_X_bar, True, True, True, True))
    return eps, grads, X_bar


@torch.no_grad()
def cost(z: Tensor, y: Tensor) -> Tensor:
    """ε = (1/N) Σ_i L(z_i, y_i). Not F.binary_cross_entropy_with_logits: at y = 0 and z ≪ 0 it reads 0 where the
    cost is e^z (it forms (1 − y) z − log σ(z), and log σ(z) = z − log(1 + e^z) rounds to z), where the C and
    Triton kernels give e^z (see cost.py). Its price: eight elementwise ops where torch's is one fused one (15–17 µs
    against 8 at N = 256 on the 2-core CPU, 4.3–5.9 ms against 3.6–3.8 at 10⁶; this path trains only where no
    compiler or Triton is found)."""
    return sample_costs(z, y).mean()


@torch.no_grad()
def cost_backward(z: Tensor, y: Tensor, eps_bar: Tensor) -> Tensor:
    """z̄ = ε̄ (o − y)/N, in place on o."""
    return torch.sigmoid(z).sub_(y).mul_(eps_bar / z.numel())


@torch.no_grad()
def ensemble_loss_and_gradients(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor,
                                need_X_bar: bool) -> tuple[Tensor, list[Tensor], Tensor | None]:
    """K networks (:mod:`torch_tanhnet.ensemble`): ε (K,), the gradients at ε̄ = 1 and X̄ (K, N, D) or None,
    in batched torch ops. X (N, D) or (K, N, D), y (N, 1) or (K, N, 1)."""
    K, N = U.shape[0], X.shape[-2]
    Xk = X.expand(K, -1, -1) if X.dim() == 2 else X  # a view: every network reads a shared X   (K, N, D)
    H = torch.baddbmm(b.unsqueeze(1), Xk, U.mT).tanh_()  # H_k = tanh(X_k U_kᵀ + b_k)        (K, N, H)
    z = torch.baddbmm(c.unsqueeze(1), H, W.mT)  #           z_k = H_k W_kᵀ + c_k              (K, N, 1)
    yk = y.expand_as(z)
    eps = sample_costs(z, yk).mean(dim=(1, 2))  # ε_k = (1/N) Σ_i L(z_ki, y_ki)   (K,)
    z_bar = torch.sigmoid(z).sub_(yk).div_(N)  #             z̄_k = (o_k − y_k)/N              (K, N, 1)
    H_bar = z_bar * W  #                                     H̄_k = z̄_k W_k                    (K, N, H)
    G_bar = torch.addcmul(H_bar, H_bar, H * H, value=-1)  #  Ḡ_k = H̄_k ⊙ (1 − H_k²)           (K, N, H)
    U_bar = torch.bmm(G_bar.mT, Xk)  #                       Ū_k = Ḡ_kᵀX_k                    (K, H, D)
    b_bar = G_bar.sum(1)  #                                  b̄_k = Ḡ_kᵀ1                      (K, H)
    W_bar = torch.bmm(z_bar.mT, H)  #                        W̄_k = z̄_kᵀH_k                    (K, 1, H)
    c_bar = z_bar.sum(1)  #                                  c̄_k = z̄_kᵀ1                      (K, 1)
    X_bar = torch.bmm(G_bar, U) if need_X_bar else None  #   X̄_k = Ḡ_k U_k                    (K, N, D)
    return eps, [U_bar, b_bar, W_bar, c_bar], X_bar


def ensemble_evaluate(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor, n_first: int) -> Tensor:
    """K networks' metrics (float64 (K, 4)): Σ L and right answers over samples [0, n_first), then over
    [n_first, N), in batched torch ops. X (N, D) or (K, N, D), y (N, 1) or (K, N, 1)."""
    K = U.shape[0]
    Xk = X.expand(K, -1, -1) if X.dim() == 2 else X  #    a view: every network reads a shared X   (K, N, D)
    H = torch.baddbmm(b.unsqueeze(1), Xk, U.mT).tanh_()  # H_k = tanh(X_k U_kᵀ + b_k)        (K, N, H)
    z = torch.baddbmm(c.unsqueeze(1), H, W.mT)  #           z_k = H_k W_kᵀ + c_k              (K, N, 1)
    yk = y.expand_as(z)
    L = sample_costs(z, yk)  # L = softplus(z) − y z  (K, N, 1)
    right = ((z > 0) == (yk > 0.5)).to(torch.float64)  #    (z > 0) = (y > ½)                 (K, N, 1)
    L = L.to(torch.float64)
    return torch.stack([L[:, :n_first].sum((1, 2)), right[:, :n_first].sum((1, 2)),
                        L[:, n_first:].sum((1, 2)), right[:, n_first:].sum((1, 2))], 1)
