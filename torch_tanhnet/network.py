"""The handout's network as a ``torch.autograd.Function`` with the hand-derived backward.

Forward (vector form; the course handout's equations, restated in ``docs/derivation.md``)::

    G = X Uᵀ + b      H = tanh(G)      z = H Wᵀ + c

Backward (vector form), receiving z̄ from whatever follows (any cost, not only
the handout's)::

    W̄ = z̄ᵀH   c̄ = z̄ᵀ1   H̄ = z̄W   Ḡ = H̄ ⊙ (1 − H²)   Ū = ḠᵀX   b̄ = Ḡᵀ1   X̄ = ḠU

X̄ is not in the handout; it lets the network sit after other layers.

Forward mode (tangents, the jvp), for tangents Ẋ, U̇, ḃ, Ẇ, ċ of the inputs; derived by
differentiating each forward line (product rule on the two matrix products, and
tanh'(G) = 1 − tanh²(G) = 1 − H² on the middle one)::

    Ġ = Ẋ Uᵀ + X U̇ᵀ + ḃ      Ḣ = (1 − H²) ⊙ Ġ      ż = Ḣ Wᵀ + H Ẇᵀ + ċ

Both outputs get their tangent: (ż, Ḣ).

H is returned as a second output (one of the two patterns PyTorch's docs give for saving an
intermediate; the other recomputes it in backward from the saved inputs): ``setup_context`` can
then save H, and since H is a real, differentiable output, a gradient that reaches it (H̃, for
instance from a second derivative, or from a user reading the hidden layer) is added to H̄. With
the backward written in differentiable torch ops, its use of H is then itself differentiated
through this Function, and ``gradgradcheck`` passes. An intermediate kept without being returned
would be a constant to a second derivative: wrong Hessian-vector products, without an error.
``docs/custom-function.md`` walks through each choice.

The public functions (:func:`torch_tanhnet.tanhnet`, ``TanhNet``) run faster Functions where
they serve (``kernels/``); :func:`torch_tanhnet.reference_equations` runs this one.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import amp
from .function_limits import refuse_nested_forward

Tensor = torch.Tensor


class TanhNetFunction(torch.autograd.Function):
    """``(z, H) = TanhNetFunction.apply(X, U, b, W, c)``: the handout's forward, hand-written backward.

    X (N, D), U (H, D), b (H,), W (1, H), c (1,) -> z (N, 1), H (N, H).
    Use :func:`torch_tanhnet.tanhnet` for z alone, with input checks (it runs the fast Functions where they
    serve, this one under torch.func, torch.compile, forward mode and :func:`torch_tanhnet.reference_equations`).
    """

    @staticmethod
    def forward(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        _, H, z = TanhNetFunction.forward_equations(X, U, b, W, c)
        return z, H

    @staticmethod
    def forward_equations(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> Forward:
        """The handout's forward equations (vector form), G kept beside H and z for the gradient audit."""
        G = torch.addmm(b, X, U.t())  # g_ij = u_j1 x_i1 + u_j2 x_i2 + b_j        (N, H); D = 2 written out
        H = torch.tanh(G)  #            h_ij = tanh(g_ij)                          (N, H)
        z = torch.addmm(c, H, W.t())  # z_i = w_1 h_i1 + w_2 h_i2 + w_3 h_i3 + c   (N, 1); H = 3 written out
        return Forward(G, H, z)

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
        ctx.save_for_forward(X, U, W, H)  # the tangent equations need the same four
        ctx.set_materialize_grads(False)  # H̃ is None unless something used H; so is, in jvp, a tangent not passed
        ctx.autocast = amp.state(X)  # called under torch.autocast: the backward's products in the forward's dtype

    @staticmethod
    def backward(ctx, z_bar: Tensor | None, H_tilde: Tensor | None):
        X, U, W, H = ctx.saved_tensors
        with amp.again(ctx.autocast):
            adj = TanhNetFunction.backward_equations(z_bar, H_tilde, X, U, W, H, ctx.needs_input_grad)
        return adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar

    @staticmethod
    def jvp(ctx, X_dot: Tensor | None, U_dot: Tensor | None, b_dot: Tensor | None, W_dot: Tensor | None,
            c_dot: Tensor | None) -> tuple[Tensor, Tensor]:
        refuse_nested_forward("TanhNetFunction")  # a jvp of this jvp would be silently wrong (PyTorch's)
        X, U, W, H = ctx.saved_tensors  # what setup_context saved for forward
        tan = TanhNetFunction.tangent_equations(X_dot, U_dot, b_dot, W_dot, c_dot, X, U, W, H)
        return tan.z_dot, tan.H_dot

    @staticmethod
    def tangent_equations(X_dot: Tensor | None, U_dot: Tensor | None, b_dot: Tensor | None, W_dot: Tensor | None,
                          c_dot: Tensor | None, X: Tensor, U: Tensor, W: Tensor, H: Tensor) -> "Tangents":
        """The forward-mode (tangent) equations (vector form), every tangent kept for the gradient audit.

        A tangent given as None counts as zero (its term is left out). Written in differentiable
        torch ops, so a tangent can itself be differentiated in reverse mode (forward over reverse and back); an
        outer forward mode does not reach it (PyTorch's; :mod:`torch_tanhnet.function_limits`).
        """
        X_dot_Ut = X_dot.mm(U.t()) if X_dot is not None else None  # Ẋ Uᵀ                              (N, H)
        X_U_dot_t = X.mm(U_dot.t()) if U_dot is not None else None  # X U̇ᵀ                             (N, H)
        G_dot = _sum(X_dot_Ut, X_U_dot_t, b_dot, like=H)  # Ġ = Ẋ Uᵀ + X U̇ᵀ + ḃ,
        #                                                    ġ_ij = Σ_k (ẋ_ik u_jk + x_ik u̇_jk) + ḃ_j       (N, H)
        H_dot = (1 - H * H) * G_dot  # Ḣ = (1 − H²) ⊙ Ġ, ḣ_ij = (1 − h_ij²) ġ_ij                           (N, H)
        H_W_dot_t = H.mm(W_dot.t()) if W_dot is not None else None  # H Ẇᵀ                             (N, 1)
        z_dot = _sum(H_dot.mm(W.t()), H_W_dot_t, c_dot, like=H[:, :1])  # ż = Ḣ Wᵀ + H Ẇᵀ + ċ,
        #                                                    ż_i = Σ_j (ḣ_ij w_j + h_ij ẇ_j) + ċ            (N, 1)
        return Tangents(G_dot, H_dot, z_dot)

    @staticmethod
    def backward_equations(z_bar: Tensor | None, H_tilde: Tensor | None, X: Tensor, U: Tensor, W: Tensor,
                           H: Tensor, needs: tuple[bool, ...] = (True,) * 5) -> "Adjoints":
        """The handout's backward equations (vector form), every adjoint kept for the gradient audit.

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


class TanhNetFunctionForCompile(TanhNetFunction):
    """TanhNetFunction without its jvp: what :func:`torch_tanhnet.tanhnet` runs under ``torch.compile``.

    Dynamo (torch 2.13) does not trace a Function that defines a custom jvp ("Unsupported custom
    jvp"): it breaks the graph there, and ``fullgraph=True`` fails. This twin has the same forward,
    setup_context, backward and vmap rule, and the base class's jvp (none), so compiled code traces
    as it did before forward mode existed. Forward mode inside a compiled region goes through the forward's torch
    ops, not the hand-written tangents (it compiles and matches eager: tests/test_transforms.py).
    """

    jvp = staticmethod(torch.autograd.Function.jvp)


def _sum(*terms: Tensor | None, like: Tensor) -> Tensor:
    """The sum of the terms that are not None, broadcast to ``like``'s shape (zeros if all are None)."""
    present = [t for t in terms if t is not None]
    if not present:
        return torch.zeros_like(like)
    total = present[0]
    for t in present[1:]:
        total = total + t
    return total if total.shape == like.shape else total.expand_as(like)  # ḃ alone is (H,), Ġ is (N, H)


class Forward(NamedTuple):
    G: Tensor  # (N, H)
    H: Tensor  # (N, H)
    z: Tensor  # (N, 1)


class Tangents(NamedTuple):
    """What the tangent equations give."""

    G_dot: Tensor
    H_dot: Tensor
    z_dot: Tensor


class Adjoints(NamedTuple):
    """What the backward equations give; None where not needed."""

    X_bar: Tensor | None
    U_bar: Tensor | None
    b_bar: Tensor | None
    W_bar: Tensor | None
    c_bar: Tensor | None
    H_bar: Tensor | None
    G_bar: Tensor | None
