"""Each network's gradient and Hessian of its own cost ε_k, for K networks at once, in closed form.

:func:`torch_tanhnet.landscape.hessian` finds one network's (P, P) Hessian column by column, as the
forward-mode derivative of the gradient (P passes through the reference Functions). For the K
networks of a sweep that is K·P passes; here the second derivatives are written out once, for
all K networks in a few batched products. For network k (the index k dropped), samples i, hidden
units j, inputs d, with x̃_i = (x_i, 1) and the forward G = XUᵀ + b, H = tanh(G), z = HWᵀ + c::

    o_i = σ(z_i)     r_i = (o_i − y_i)/N     s_i = o_i(1 − o_i)/N      ∂ε/∂z_i and ∂²ε/∂z_i²
    h'_ij = 1 − h_ij²      h''_ij = −2 h_ij h'_ij                      tanh' and tanh'' at g_ij

    ∂z_i/∂θ = j_i = (w_j h'_ij x_id, w_j h'_ij, h_ij, 1)               over (u_jd, b_j, w_j, c)
    ∂ε/∂θ = Σ_i r_i j_i                                                the backward equations of network.py
    ∂²ε/∂θ² = Σ_i s_i j_i j_iᵀ + Σ_i r_i ∂²z_i/∂θ²

and z_i is linear in W and c and each unit's (u_j, b_j) enters through its own h_ij alone, so the
only nonzero second derivatives of z_i are, for each unit j::

    ∂²z_i/∂(u_j, b_j)² = w_j h''_ij x̃_i x̃_iᵀ        ∂²z_i/∂(u_j, b_j)∂w_j = h'_ij x̃_i

Rows and columns are θ flattened as :func:`torch_tanhnet.landscape.flat_parameters` orders them:
U row by row (index j·D + d), then b (H·D + j), W (H·D + H + j), c (last). Tested against
:func:`torch_tanhnet.landscape.hessian` network by network (float64, ≤ 1e-10).
"""

from __future__ import annotations

import torch

from ..amp import off
from .checks import check_ensemble_loss_inputs
from .function import per_network

Tensor = torch.Tensor


def ensemble_gradient(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """∂ε_k/∂θ_k (K, P) of each network's mean cost on its own samples. X (N, D) or (K, N, D), y (N, 1) or
    (K, N, 1); U (K, H, D), b (K, H), W (K, 1, H), c (K, 1) as TanhNetEnsemble holds them, checked (one-line
    errors naming what was expected and what came)."""
    check_ensemble_loss_inputs(X, U, b, W, c, y)
    with off(X):  # in the inputs' dtype, as it says: under torch.autocast the products ran in bfloat16
        return _forward_and_gradient(X, U, b, W, c, y)[-1]


def ensemble_gradient_and_hessian(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor
                                  ) -> tuple[Tensor, Tensor]:
    """(∂ε_k/∂θ_k (K, P), ∂²ε_k/∂θ_k² (K, P, P)) of each network's mean cost on its own samples, in the inputs'
    dtype (the arguments as for :func:`ensemble_gradient`). Memory: a few (K, N, P) tensors; chunk K for big ones."""
    check_ensemble_loss_inputs(X, U, b, W, c, y)
    with off(X):  # in the inputs' dtype, as it says: under torch.autocast the Hessian came in bfloat16
        return _gradient_and_hessian(X, U, b, W, c, y)


def _gradient_and_hessian(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    K, Hn, D = U.shape
    X = per_network(X, K)
    N = X.shape[1]
    H, o, r, d1, grad = _forward_and_gradient(X, U, b, W, c, y)
    s = o * (1 - o) / N  #                                   s_i = o_i(1 − o_i)/N                 (K, N, 1)
    wd1 = W * d1  #                                          w_j h'_ij                            (K, N, H)
    J = torch.cat([(wd1.unsqueeze(3) * X.unsqueeze(2)).reshape(K, N, Hn * D),  # ∂z_i/∂u_jd = w_j h'_ij x_id
                   wd1,  #                                                        ∂z_i/∂b_j  = w_j h'_ij
                   H,  #                                                          ∂z_i/∂w_j  = h_ij
                   torch.ones_like(o)], 2)  #                                     ∂z_i/∂c    = 1      J (K, N, P)
    hessian = torch.bmm(J.mT, s * J)  #                      Σ_i s_i j_i j_iᵀ                     (K, P, P)
    Xt = torch.cat([X, torch.ones_like(o)], 2)  #            x̃_i = (x_i, 1)                      (K, N, D+1)
    wd2 = -2 * H * wd1  #                                    w_j h''_ij = −2 w_j h_ij h'_ij       (K, N, H)
    # the factor first, then x̃_iᵀ: x̃_i x̃_iᵀ formed alone overflows for |x| past 1e154 (1e19 in float32), and
    # times a saturated unit's h'' = 0 gave NaN where the Hessian is finite
    aX = ((r * wd2).unsqueeze(3) * Xt.unsqueeze(2)).reshape(K, N, Hn * (D + 1))  # r_i w_j h''_ij x̃_i  (K, N, H(D+1))
    A = torch.bmm(aX.mT, Xt).view(K, Hn, D + 1, D + 1)  #   Σ_i r_i w_j h''_ij x̃_i x̃_iᵀ          (K, H, D+1, D+1)
    B = torch.bmm((r * d1).mT, Xt)  #                        Σ_i r_i h'_ij x̃_i                    (K, H, D+1)
    j = torch.arange(Hn, device=U.device)
    ub = torch.cat([j[:, None] * D + torch.arange(D, device=U.device), (Hn * D + j)[:, None]], 1)  # (u_j, b_j) (H, D+1)
    w = (Hn * D + Hn + j)[:, None].expand(Hn, D + 1)  #      w_j's index, beside each of them     (H, D+1)
    hessian[:, ub[:, :, None], ub[:, None, :]] += A  #       ∂²ε/∂(u_j, b_j)²: units apart, no index repeats
    hessian[:, ub, w] += B  #                                ∂²ε/∂(u_j, b_j)∂w_j
    hessian[:, w, ub] += B  #                                and its mirror
    return grad, hessian


def _forward_and_gradient(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor):
    """H, o, r, h' and the gradient (K, P): the forward, then the backward equations at ε̄_k = 1."""
    K = U.shape[0]
    X = per_network(X, K)
    N = X.shape[1]
    H = torch.baddbmm(b.unsqueeze(1), X, U.mT).tanh()  #     H = tanh(X Uᵀ + b)                   (K, N, H)
    o = torch.baddbmm(c.unsqueeze(1), H, W.mT).sigmoid()  #  o = σ(H Wᵀ + c)                      (K, N, 1)
    r = (o - y.expand_as(o)) / N  #                          r_i = z̄_i = (o_i − y_i)/N            (K, N, 1)
    d1 = 1 - H * H  #                                        h'_ij = 1 − h_ij²                    (K, N, H)
    G_bar = r * W * d1  #                                    Ḡ = z̄W ⊙ (1 − H²)                    (K, N, H)
    grad = torch.cat([torch.bmm(G_bar.mT, X).reshape(K, -1),  # Ū = ḠᵀX
                      G_bar.sum(1),  #                          b̄ = Ḡᵀ1
                      torch.bmm(r.mT, H).reshape(K, -1),  #     W̄ = z̄ᵀH
                      r.sum(1)], 1)  #                          c̄ = z̄ᵀ1                            (K, P)
    return H, o, r, d1, grad
