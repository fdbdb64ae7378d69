"""The seed's computational graph (its missing Figure 1) as a module for ``SummaryWriter.add_graph``.

Each node of the derivation is a named submodule, so TensorBoard's graph tab draws
boxes called G, H, z, o and cost, fed by the parameters U, b, W, c. The maths are
plain torch ops here (a picture of the graph, not the training path).
"""

from __future__ import annotations

import torch
from torch import nn

from ..module import TanhNet
from ..audit.reference import cost_reference

Tensor = torch.Tensor


class _Op(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Tensor) -> Tensor:
        return self.fn(*args)


class SeedGraph(nn.Module):
    """forward(X, y) -> ε through G = XUᵀ + b, H = tanh(G), z = HWᵀ + c, o = σ(z), cost."""

    def __init__(self, net: TanhNet) -> None:
        super().__init__()
        self.U, self.b, self.W, self.c = net.U, net.b, net.W, net.c
        self.G = _Op(lambda X, U, b: torch.addmm(b, X, U.t()))
        self.H = _Op(torch.tanh)
        self.z = _Op(lambda H, W, c: torch.addmm(c, H, W.t()))
        self.o = _Op(torch.sigmoid)
        self.cost = _Op(cost_reference)

    def forward(self, X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        G = self.G(X, self.U, self.b)
        H = self.H(G)
        z = self.z(H, self.W, self.c)
        return self.o(z), self.cost(z, y)
