"""TorchScript: ``torch.jit.script(TanhNet)`` scripts a twin that holds the same parameters; ``torch.jit.trace``
records torch ops (:mod:`torch_tanhnet.function_limits`) without the input checks' warnings.

TorchScript cannot compile the modules' Python (the input checks, the dispatch, the autograd Functions): scripting
one stopped at its first line ("NamedExpr aren't supported"). ``torch.jit.script`` first asks a module for
``__prepare_scriptable__`` and scripts what that returns: here a module whose ``forward``, ``predict_proba`` and
``loss`` are the handout's equations in torch ops, holding the very Parameter objects U, b, W, c, so the scripted
module reads and trains the original's weights, and saves (``torch.jit.save``) and loads (``torch.jit.load``, C++'s
``torch::jit::load``) as any scripted module does. Its derivatives are autograd's of those ops (the hand-written
backward is Python, which TorchScript cannot hold). A module with hooks, its own forward or a parametrized weight
is handed to TorchScript as it is, and torch's own error follows: a twin would leave them out.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def scriptable(module: nn.Module, base: type, twin: type) -> nn.Module:
    """``twin(module)`` where it computes what ``module`` does, else ``module`` itself (see above)."""
    from .module import hooked, overrides_forward  # module.py imports this file

    plain = all(isinstance(module._parameters.get(name), nn.Parameter) for name in "UbWc")  # parametrized: not
    if not plain or hooked(module) or overrides_forward(module, base):
        return module
    return twin(module)


def quietly_traced(slow_forward, *args, **kwargs):
    """``nn.Module._slow_forward`` (what a module runs in place of ``forward`` under torch.jit.trace) without
    TracerWarnings: the input checks compare shapes, which the tracer warns 'might not generalize'; they are
    Python, not part of the graph, so the warnings would only alarm."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return slow_forward(*args, **kwargs)


class ScriptableTanhNet(nn.Module):
    """TanhNet's forward, predict_proba and loss in TorchScript's torch ops, on TanhNet's own parameters."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.U, self.b, self.W, self.c = model.U, model.b, model.W, model.c  # the same Parameters: shared

    def forward(self, X: Tensor) -> Tensor:
        """X (*, D) -> z (*, 1)."""
        H = torch.tanh(F.linear(X, self.U, self.b))  # H = tanh(X Uᵀ + b)   (*, H)
        return F.linear(H, self.W, self.c)  #           z = H Wᵀ + c         (*, 1)

    @torch.jit.export
    def predict_proba(self, X: Tensor) -> Tensor:
        return torch.sigmoid(self.forward(X))  # o = σ(z)

    @torch.jit.export
    def loss(self, X: Tensor, y: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.forward(X), y)  # ε = (1/N) Σᵢ L(zᵢ, yᵢ)


class ScriptableTanhNetEnsemble(nn.Module):
    """TanhNetEnsemble's forward, predict_proba and loss in TorchScript's torch ops, on the ensemble's own
    parameters."""

    def __init__(self, ensemble: nn.Module) -> None:
        super().__init__()
        self.U, self.b, self.W, self.c = ensemble.U, ensemble.b, ensemble.W, ensemble.c  # shared

    def forward(self, X: Tensor) -> Tensor:
        """X (N, D) shared or (K, N, D) -> z (K, N, 1)."""
        if X.dim() == 2:
            X = X.expand(self.U.shape[0], -1, -1)
        H = torch.tanh(torch.baddbmm(self.b.unsqueeze(1), X, self.U.transpose(1, 2)))  # H_k = tanh(X_k U_kᵀ + b_k)
        return torch.baddbmm(self.c.unsqueeze(1), H, self.W.transpose(1, 2))  #            z_k = H_k W_kᵀ + c_k

    @torch.jit.export
    def predict_proba(self, X: Tensor) -> Tensor:
        return torch.sigmoid(self.forward(X))

    @torch.jit.export
    def loss(self, X: Tensor, y: Tensor) -> Tensor:
        """ε (K,): each network's mean cost; y (N, 1) shared or (K, N, 1)."""
        z = self.forward(X)
        costs = F.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none")
        return costs.mean(dim=(1, 2))
