"""The handout's network and cost for K networks at once, with a network index k: the ensemble's reference.

Letters: here k indexes the networks (k ∈ {1…K}) and d the input features, which the handout calls k
(its ū_jk is ū_kjd here, network k's); i and j are the handout's (samples, hidden units).

Forward, for each network k (vector form of the course handout's equations, ``docs/derivation.md``)::

    G_k = X_k U_kᵀ + b_k      H_k = tanh(G_k)      z_k = H_k W_kᵀ + c_k

Backward, receiving z̄_k::

    W̄_k = z̄_kᵀH_k   c̄_k = z̄_kᵀ1   H̄_k = z̄_k W_k   Ḡ_k = H̄_k ⊙ (1 − H_k²)   Ū_k = Ḡ_kᵀX_k   b̄_k = Ḡ_kᵀ1
    X̄_k = Ḡ_k U_k     (X shared by all networks: X̄ = Σ_k Ḡ_k U_k)

Cost, each network its own mean: ε_k = (1/N) Σ_i L(z_ki, y_ki), z̄_ki = ε̄_k (o_ki − y_ki)/N.

These are :class:`~torch_tanhnet.network.TanhNetFunction` and
:class:`~torch_tanhnet.cost.BCEWithLogitsFunction` with a leading index k, written with batched
matrix products (``baddbmm``, ``bmm``) so that the K networks are one call each. As in
network.py, H is a second output and the backward is made of differentiable torch ops, so
``gradgradcheck`` passes; ``jvp`` gives forward mode. The fast training path
(:mod:`torch_tanhnet.ensemble.fused`) is tested against these.
"""

from __future__ import annotations

import torch

from .. import amp
from ..cost import sample_costs
from ..function_limits import apply_reference, refuse_nested_forward
from ..kernels.dispatch import compiling as _compiling
from .checks import check_ensemble_inputs, check_ensemble_labels, check_ensemble_loss_inputs

Tensor = torch.Tensor


def per_network(X: Tensor, K: int) -> Tensor:
    """X as (K, N, D): a shared X (N, D) expanded (a view, no copy), a per-network X as it is."""
    return X.expand(K, -1, -1) if X.dim() == 2 else X


class EnsembleFunction(torch.autograd.Function):
    """``(z, H) = EnsembleFunction.apply(X, U, b, W, c)``: K networks' forward, hand-written backward.

    X (N, D) shared or (K, N, D), U (K, H, D), b (K, H), W (K, 1, H), c (K, 1) -> z (K, N, 1), H (K, N, H).
    """

    generate_vmap_rule = True  # forward, backward and jvp are plain torch ops, so vmap can batch them

    @staticmethod
    def forward(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        Xk = per_network(X, U.shape[0])
        G = torch.baddbmm(b.unsqueeze(1), Xk, U.mT)  # g_kij = Σ_d u_kjd x_kid + b_kj    (K, N, H)
        H = torch.tanh(G)  #                          h_kij = tanh(g_kij)                (K, N, H)
        z = torch.baddbmm(c.unsqueeze(1), H, W.mT)  # z_ki = Σ_j w_kj h_kij + c_k        (K, N, 1)
        return z, H

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        X, U, b, W, c = inputs
        z, H = output
        ctx.save_for_backward(X, U, W, H)  # H, not G: 1 − tanh²(G) = 1 − H²
        ctx.save_for_forward(X, U, W, H)
        ctx.set_materialize_grads(False)  # H̃ is None unless something used H; so is, in jvp, a tangent not passed
        ctx.autocast = amp.state(X)  # called under torch.autocast: the backward's products in the forward's dtype

    @staticmethod
    def backward(ctx, z_bar: Tensor | None, H_tilde: Tensor | None):
        X, U, W, H = ctx.saved_tensors
        with amp.again(ctx.autocast):
            return EnsembleFunction.backward_equations(z_bar, H_tilde, X, U, W, H, ctx.needs_input_grad)

    @staticmethod
    def backward_equations(z_bar, H_tilde, X, U, W, H, needs=(True,) * 5):
        """[X̄, Ū, b̄, W̄, c̄] from z̄ (K, N, 1) and H̃ (K, N, H) (either may be None); None where not needed."""
        X_bar = U_bar = b_bar = W_bar = c_bar = None
        if z_bar is not None:
            if needs[3]:
                W_bar = torch.bmm(z_bar.mT, H)  # W̄_k = z̄_kᵀH_k, w̄_kj = Σ_i z̄_ki h_kij      (K, 1, H)
            if needs[4]:
                c_bar = z_bar.sum(1)  #            c̄_k = z̄_kᵀ1,  c̄_k = Σ_i z̄_ki             (K, 1)
        if any(needs[:3]) and (z_bar is not None or H_tilde is not None):
            H_bar = torch.bmm(z_bar, W) if z_bar is not None else None  # H̄_k = z̄_k W_k    (K, N, H)
            if H_tilde is not None:  # a gradient that reached H directly adds to H̄
                H_bar = H_tilde if H_bar is None else H_bar + H_tilde
            G_bar = H_bar * (1 - H * H)  # Ḡ_k = H̄_k ⊙ (1 − H_k²)                             (K, N, H)
            if needs[0]:
                X_bar = torch.bmm(G_bar, U)  # X̄_k = Ḡ_k U_k, x̄_kid = Σ_j ḡ_kij u_kjd          (K, N, D)
                if X.dim() == 2:
                    X_bar = X_bar.sum(0)  #    X̄ = Σ_k Ḡ_k U_k when every network reads X       (N, D)
            if needs[1]:
                U_bar = torch.bmm(G_bar.mT, per_network(X, U.shape[0]))  # Ū_k = Ḡ_kᵀX_k     (K, H, D)
            if needs[2]:
                b_bar = G_bar.sum(1)  #        b̄_k = Ḡ_kᵀ1, b̄_kj = Σ_i ḡ_kij                    (K, H)
        return X_bar, U_bar, b_bar, W_bar, c_bar

    @staticmethod
    def jvp(ctx, X_dot, U_dot, b_dot, W_dot, c_dot):
        """Forward mode: (ż, Ḣ) from the inputs' tangents (None: no tangent)."""
        refuse_nested_forward("EnsembleFunction")
        X, U, W, H = ctx.saved_tensors
        K = U.shape[0]
        G_dot = torch.zeros_like(H)
        if X_dot is not None:
            G_dot = G_dot + torch.bmm(per_network(X_dot, K), U.mT)  # Ġ_k += Ẋ_k U_kᵀ           (K, N, H)
        if U_dot is not None:
            G_dot = G_dot + torch.bmm(per_network(X, K), U_dot.mT)  # Ġ_k += X_k U̇_kᵀ           (K, N, H)
        if b_dot is not None:
            G_dot = G_dot + b_dot.unsqueeze(1)  #                     Ġ_k += ḃ_k                 (K, N, H)
        H_dot = G_dot * (1 - H * H)  #                                Ḣ_k = Ġ_k ⊙ (1 − H_k²)      (K, N, H)
        z_dot = torch.bmm(H_dot, W.mT)  #                             ż_k = Ḣ_k W_kᵀ             (K, N, 1)
        if W_dot is not None:
            z_dot = z_dot + torch.bmm(H, W_dot.mT)  #                 ż_k += H_k Ẇ_kᵀ            (K, N, 1)
        if c_dot is not None:
            z_dot = z_dot + c_dot.unsqueeze(1)  #                     ż_k += ċ_k                 (K, N, 1)
        return z_dot, H_dot


class EnsembleBCEFunction(torch.autograd.Function):
    """``ε = EnsembleBCEFunction.apply(z, y)``: each network's mean cost, hand-written backward.

    z (K, N, 1), y (K, N, 1) -> ε (K,), ε_k = (1/N) Σ_i L(z_ki, y_ki).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(z: Tensor, y: Tensor) -> Tensor:
        L = sample_costs(z, y)  # L = y log(1 + e^(−z)) + (1 − y) log(1 + e^z) = softplus(z) − y z   (K, N, 1)
        return L.mean(dim=(1, 2))  # ε_k = (1/N) Σ_i L(z_ki, y_ki)                                 (K,)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        z, y = inputs
        ctx.save_for_backward(z, y)
        ctx.save_for_forward(z, y)
        ctx.set_materialize_grads(False)  # a tangent autograd does not pass reaches jvp as None: its term left out

    @staticmethod
    def backward(ctx, eps_bar: Tensor | None):
        if eps_bar is None:  # materializing off: no gradient reached ε (a double backward's unused branch)
            return None, None
        z, y = ctx.saved_tensors
        return EnsembleBCEFunction.backward_equations(eps_bar, z, y, ctx.needs_input_grad)

    @staticmethod
    def backward_equations(eps_bar: Tensor, z: Tensor, y: Tensor, needs=(True, True)):
        """z̄ and ȳ (K, N, 1) from ε̄ (K,), None where not needed: differentiable torch ops."""
        z_bar = y_bar = None
        scale = (eps_bar / z.shape[1]).view(-1, 1, 1)  # ε̄_k / N                   (K, 1, 1)
        if needs[0]:
            z_bar = scale * (torch.sigmoid(z) - y)  #      z̄_ki = ε̄_k (o_ki − y_ki)/N   (K, N, 1)
        if needs[1]:
            y_bar = scale * -z  #                          ȳ_ki = −ε̄_k z_ki / N         (K, N, 1)
        return z_bar, y_bar

    @staticmethod
    def jvp(ctx, z_dot, y_dot):
        refuse_nested_forward("EnsembleBCEFunction")
        z, y = ctx.saved_tensors
        eps_dot = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        if z_dot is not None:
            eps_dot = eps_dot + ((torch.sigmoid(z) - y) * z_dot).mean(dim=(1, 2))  # ε̇_k += (1/N) Σ_i (o − y) ż
        if y_dot is not None:
            eps_dot = eps_dot - (z * y_dot).mean(dim=(1, 2))  #                     ε̇_k −= (1/N) Σ_i z ẏ
        return eps_dot


class _CompiledEnsembleFunction(EnsembleFunction):
    """EnsembleFunction without ``jvp``, for ``torch.compile``: Dynamo (torch 2.13) refuses to trace a Function
    that defines one (``Unsupported custom jvp``). Forward mode is not traced through compiled code."""

    jvp = staticmethod(torch.autograd.Function.jvp)


class _CompiledEnsembleBCEFunction(EnsembleBCEFunction):
    """EnsembleBCEFunction without ``jvp``, for ``torch.compile`` (see :class:`_CompiledEnsembleFunction`)."""

    jvp = staticmethod(torch.autograd.Function.jvp)


def ensemble_network(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """(z, H) = EnsembleFunction.apply(X, U, b, W, c), or its jvp-free twin under torch.compile."""
    return apply_reference(_CompiledEnsembleFunction if _compiling() else EnsembleFunction, X, U, b, W, c)


def ensemble_reference_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """ε (K,) through the two reference Functions: the composition every fast path is tested against.

    X (N, D) or (K, N, D), U (K, H, D), b (K, H), W (K, 1, H), c (K, 1), y (N, 1) or (K, N, 1), checked (one-line
    errors naming what was expected and what came). y (N, 1) shared by all networks is expanded to (K, N, 1) (a
    view; its gradient sums over k).
    """
    if (low := amp.autocast_dtype(X)) is not None:  # as K nn.Linear's and BCEWithLogitsLoss: z in its dtype, ε float32
        X, U, b, W, c = amp.cast(low, X, U, b, W, c)
        K, N, _, _ = check_ensemble_inputs(X, U, b, W, c)
        with amp.off(X):  # the Functions on tensors already cast, as the module runs them
            z, y = amp.cast(torch.float32, ensemble_network(X, U, b, W, c)[0], y)
            check_ensemble_labels(y, K, N, z.dtype, z.device)
            return ensemble_cost(z, y)
    check_ensemble_loss_inputs(X, U, b, W, c, y)
    return _ensemble_reference_loss(X, U, b, W, c, y)


def _ensemble_reference_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """:func:`ensemble_reference_loss` without the checks, for callers that made them."""
    return ensemble_cost(ensemble_network(X, U, b, W, c)[0], y)


def ensemble_cost(z: Tensor, y: Tensor) -> Tensor:
    """ε (K,) of the logits z (K, N, 1) against y (N, 1) shared or (K, N, 1), through the reference cost Function
    (its jvp-free twin under torch.compile); unchecked."""
    cost = _CompiledEnsembleBCEFunction if _compiling() else EnsembleBCEFunction
    return apply_reference(cost, z, y.expand_as(z) if y.dim() == 2 else y)
