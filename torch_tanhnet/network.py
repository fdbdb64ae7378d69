"""The seed's network as a ``torch.autograd.Function`` with the hand-derived backward.

Forward (vector form, ``../shared/seed/neural-network-derivation.md``)::

    G = X Uᵀ + b      H = tanh(G)      z = H Wᵀ + c

Backward (vector form), receiving z̄ from whatever follows (any cost, not only
the seed's)::

    W̄ = z̄ᵀH   c̄ = z̄ᵀ1   H̄ = z̄W   Ḡ = H̄ ⊙ (1 − H²)   Ū = ḠᵀX   b̄ = Ḡᵀ1   X̄ = ḠU

X̄ is not in the seed; it lets the network sit after other layers.

H is returned as a second output (the pattern PyTorch's docs give for saving an
intermediate): ``setup_context`` can then save H rather than recompute it, and
since H is a real, differentiable output, a gradient that reaches it (H̃, for
instance from a second derivative, or from a user reading the hidden layer) is
added to H̄. That is what makes ``gradgradcheck`` pass: the backward below is
written in differentiable torch ops, and its use of H is itself differentiated
through this Function.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

Tensor = torch.Tensor


class TanhNetFunction(torch.autograd.Function):
    """``(z, H) = TanhNetFunction.apply(X, U, b, W, c)``: the seed's forward, hand-written backward.

    X (N, D), U (H, D), b (H,), W (1, H), c (1,) -> z (N, 1), H (N, H).
    Use :func:`torch_tanhnet.tanhnet` for z alone, with input checks.
    """

    @staticmethod
    def forward(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        G = torch.addmm(b, X, U.t())  # g_ij = u_j1 x_i1 + u_j2 x_i2 + b_j        (N, H)
        H = torch.tanh(G)  #            h_ij = tanh(g_ij)                          (N, H)
        z = torch.addmm(c, H, W.t())  # z_i = w_1 h_i1 + w_2 h_i2 + w_3 h_i3 + c   (N, 1)
        return z, H

    @staticmethod
    def vmap(info, in_dims, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor):
        """Under ``torch.func.vmap``: batched parameters are K networks, run by the ensemble's batched Function
        (:mod:`torch_tanhnet.ensemble.vmap_rule`); batched X alone is more samples."""
        from .ensemble.vmap_rule import tanhnet_vmap  # the ensemble package imports this module

        return tanhnet_vmap(info, in_dims, X, U, b, W, c)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        X, U, b, W, c = inputs
        z, H = output
        ctx.save_for_backward(X, U, W, H)  # H, not G: 1 − tanh²(G) = 1 − H²
        ctx.set_materialize_grads(False)  # H̃ is None unless something used H

    @staticmethod
    def backward(ctx, z_bar: Tensor | None, H_tilde: Tensor | None):
        X, U, W, H = ctx.saved_tensors
        adj = TanhNetFunction.backward_equations(z_bar, H_tilde, X, U, W, H, ctx.needs_input_grad)
        return adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar

    @staticmethod
    def backward_equations(z_bar: Tensor | None, H_tilde: Tensor | None, X: Tensor, U: Tensor, W: Tensor,
                           H: Tensor, needs: tuple[bool, ...] = (True,) * 5) -> "Adjoints":
        """The seed's backward equations (vector form), every adjoint kept for the gradient audit.

        ``needs`` flags which of X̄, Ū, b̄, W̄, c̄ to compute (``ctx.needs_input_grad``);
        H̄ and Ḡ are computed when one of X̄, Ū, b̄ is needed.
        """
        X_bar = U_bar = b_bar = W_bar = c_bar = H_bar = G_bar = None
        if z_bar is not None:
            if needs[3]:
                W_bar = z_bar.t().mm(H)  # W̄ = z̄ᵀH, w̄_j = Σ_i z̄_i h_ij       (1, H)
            if needs[4]:
                c_bar = z_bar.sum(0)  #    c̄ = z̄ᵀ1, c̄ = Σ_i z̄_i              (1,)
        if any(needs[:3]) and (z_bar is not None or H_tilde is not None):
            H_bar = z_bar.mm(W) if z_bar is not None else None  # H̄ = z̄W, h̄_ij = z̄_i w_j   (N, H)
            if H_tilde is not None:  # a gradient that reached H directly adds to H̄
                H_bar = H_tilde if H_bar is None else H_bar + H_tilde
            G_bar = H_bar * (1 - H * H)  # Ḡ = H̄ ⊙ (1 − tanh²(G)), ḡ_ij = h̄_ij (1 − h_ij²)   (N, H)
            if needs[0]:
                X_bar = G_bar.mm(U)  #     X̄ = ḠU, x̄_ik = Σ_j ḡ_ij u_jk      (N, D)
            if needs[1]:
                U_bar = G_bar.t().mm(X)  # Ū = ḠᵀX, ū_jk = Σ_i ḡ_ij x_ik      (H, D)
            if needs[2]:
                b_bar = G_bar.sum(0)  #    b̄ = Ḡᵀ1, b̄_j = Σ_i ḡ_ij           (H,)
        return Adjoints(X_bar, U_bar, b_bar, W_bar, c_bar, H_bar, G_bar)


class Adjoints(NamedTuple):
    """What the backward equations give; None where not needed."""

    X_bar: Tensor | None
    U_bar: Tensor | None
    b_bar: Tensor | None
    W_bar: Tensor | None
    c_bar: Tensor | None
    H_bar: Tensor | None
    G_bar: Tensor | None
