"""The handout's cost, mean binary cross-entropy on logits, with the hand-derived backward.

    ε(z, y) = (1/N) Σᵢ L(zᵢ, yᵢ)
    L(z, y) = y log(1 + e^(−z)) + (1 − y) log(1 + e^(z))
    z̄ = ε̄ (σ(z) − y) / N                    ȳ = −ε̄ z / N
    ε̇ = (1/N) Σᵢ [(σ(zᵢ) − yᵢ) żᵢ − zᵢ ẏᵢ]     (forward mode, for tangents ż, ẏ)

The tangent line: ∂L/∂z = σ(z) − y (below) and ∂L/∂y = −z (L = softplus(z) − y z is
linear in y), so dL = (σ(z) − y) dz − z dy, and the mean brings the 1/N.

The handout's first line for L, ``y log σ(z) + (1 − y) log(1 − σ(z))``, lacks a
minus sign: that is the log-likelihood, which is ≤ 0 and is maximised. Its second
line, ``y log(1 + e^(−z)) + (1 − y) log(1 + e^(z))``, is the positive cost, and
``z̄ = (o − y)/N`` is its gradient; both are what is implemented here.

With softplus(z) = log(1 + e^z) and softplus(−z) = softplus(z) − z, the second
line is L = softplus(z) − y z, computed as (max(z, 0) − y z) + log1p(e^(−|z|)),
which is finite for every finite z in every floating dtype (no log σ(z)). The order
matters for an answer confidently right (y = 1, z ≫ 0, or y = 0, z ≪ 0): max(z, 0) − y z
is exactly 0 and the cost is e^(−|z|); added to z before z was taken away, that was lost
to z's rounding and the cost read 0 (at z = 20 in float32, where F.bce gives 2.1e-9).
"""

from __future__ import annotations

import torch

from .function_limits import refuse_nested_forward

Tensor = torch.Tensor


def sample_costs(z: Tensor, y: Tensor) -> Tensor:
    """L(z, y) = softplus(z) − y z elementwise, as (max(z, 0) − y z) + log1p(e^(−|z|)): the order that keeps a
    confidently right answer's small cost (see above). −|z| is written −z where z ≥ 0, else z (the same values up
    to the sign of −0, whose e^(·) is 1 either way: the cost bit for bit, ±inf and NaN included), so that torch's
    own derivative of this line is right at z = 0 too, where it runs instead of the hand-written backward
    (:mod:`torch_tanhnet.function_limits`): max(z, 0) counts z = 0 on its z ≥ 0 side, abs on neither
    (sgn(0) = 0), and autograd read ∂L/∂z = 1 − y for σ(0) − y, ∂²L/∂z² = 0 for 1/4."""
    minus_abs = torch.where(z >= 0, -z, z)  # −|z|, on max(z, 0)'s side at z = 0
    return (torch.clamp_min(z, 0) - y * z) + torch.log1p(torch.exp(minus_abs))


class BCEWithLogitsFunction(torch.autograd.Function):
    """``ε = BCEWithLogitsFunction.apply(z, y)``: the handout's positive mean cost, hand-written backward.

    z and y share one shape; ε is a 0-d tensor. Use :func:`torch_tanhnet.bce_with_logits` for the checked call.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(z: Tensor, y: Tensor) -> Tensor:
        # L = y log(1 + e^(−z)) + (1 − y) log(1 + e^z) = softplus(z) − y z     (N, 1)
        L = sample_costs(z, y)
        return L.mean()  # ε = (1/N) Σ_i L(z_i, y_i)                               ()

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
        return BCEWithLogitsFunction.backward_equations(eps_bar, z, y, ctx.needs_input_grad)

    @staticmethod
    def jvp(ctx, z_dot: Tensor | None, y_dot: Tensor | None) -> Tensor:
        refuse_nested_forward("BCEWithLogitsFunction")  # a jvp of this jvp would be silently wrong (PyTorch's)
        z, y = ctx.saved_tensors  # what setup_context saved for forward
        return BCEWithLogitsFunction.tangent_equations(z_dot, y_dot, z, y)

    @staticmethod
    def tangent_equations(z_dot: Tensor | None, y_dot: Tensor | None, z: Tensor, y: Tensor) -> Tensor:
        """ε̇ from the tangents ż and ẏ (None counts as zero)."""
        eps_dot = z.new_zeros(())
        if z_dot is not None:
            o = torch.sigmoid(z)  #                    o_i = σ(z_i)                             (N, 1)
            eps_dot = eps_dot + ((o - y) * z_dot).mean()  # ε̇ = (1/N) Σ_i (o_i − y_i) ż_i     ()
        if y_dot is not None:
            eps_dot = eps_dot - (z * y_dot).mean()  #     ε̇ −= (1/N) Σ_i z_i ẏ_i               ()
        return eps_dot

    @staticmethod
    def backward_equations(eps_bar: Tensor, z: Tensor, y: Tensor,
                           needs: tuple[bool, ...] = (True, True)) -> tuple[Tensor | None, Tensor | None]:
        """z̄ and ȳ from ε̄ (the handout's z̄ = (o − y)/N when ε̄ = 1); None where not needed."""
        z_bar = y_bar = None
        scale = eps_bar / z.numel()  # ε̄ / N                                   ()
        if needs[0]:
            o = torch.sigmoid(z)  #    o_i = σ(z_i)                             (N, 1)
            z_bar = scale * (o - y)  # z̄_i = ε̄ (o_i − y_i) / N                   (N, 1)
        if needs[1]:
            y_bar = scale * -z  #      ȳ_i = ε̄ ∂L/∂y_i / N = −ε̄ z_i / N          (N, 1)
        return z_bar, y_bar


class BCEWithLogitsFunctionForCompile(BCEWithLogitsFunction):
    """BCEWithLogitsFunction without its jvp, for ``torch.compile`` (see ``TanhNetFunctionForCompile``)."""

    jvp = staticmethod(torch.autograd.Function.jvp)
