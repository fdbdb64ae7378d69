"""The same maths in plain torch ops, differentiated by autograd: the yardstick.

Nothing here is hand-derived. Tests, the gradient audit and the benchmark compare
the hand-written Functions against these.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def network_reference(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Returns G, H, z, built from primitive ops so that autograd records each."""
    G = X @ U.t() + b  # (N, H)
    H = torch.tanh(G)  # (N, H)
    z = H @ W.t() + c  # (N, 1)
    return G, H, z


def cost_reference(z: Tensor, y: Tensor) -> Tensor:
    """Mean binary cross-entropy on logits, (1/N) Σ softplus(z) − y z, in primitive ops.

    softplus(z) = log(e^0 + e^z) through logaddexp: stable, and its autograd derivative is σ(z) everywhere (a
    clamp/abs form would give a subgradient at z = 0); the audit compares derivatives, which this form gives to
    the last bit here. Its value loses a confidently right answer's small cost e^(−|z|) to z's rounding (the
    library's cost keeps it: :func:`torch_tanhnet.cost.sample_costs`).
    """
    softplus = torch.logaddexp(z, torch.zeros_like(z))
    return (softplus - y * z).mean()


def loss_reference(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """ε for the whole network, all in primitive ops."""
    return cost_reference(network_reference(X, U, b, W, c)[2], y)
