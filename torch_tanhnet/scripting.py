"""TorchScript: what ``torch.jit.script`` compiles of TanhNet and TanhNetEnsemble, and ``torch.jit.trace`` quietly.

TorchScript cannot compile the modules' Python (the input checks, the dispatch, the autograd Functions): scripting
one stopped at its first line ("NamedExpr aren't supported"). Their ``forward`` therefore asks
``torch.jit.is_scripting()`` first, which the compiler reads as True, and compiles that branch alone: the handout's
forward equations below, in torch ops, on the module's own parameters. A scripted module (alone or inside a larger
one: nothing of the user's model is replaced) computes, saves (``torch.jit.save``) and loads (``torch.jit.load``,
C++'s ``torch::jit::load``) as any scripted module; its derivatives are autograd's of these ops (the hand-written
backward is Python). No other method is exported: torch.jit.trace compiles exported methods too, and a subclass's
Python forward would then fail it. In eager code the branch costs one call that answers False.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor


def network_equations(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> Tensor:
    """X (*, D) -> z (*, 1): TanhNet's forward in TorchScript's torch ops."""
    H = torch.tanh(F.linear(X, U, b))  # H = tanh(X Uᵀ + b)   (*, H)
    return F.linear(H, W, c)  #          z = H Wᵀ + c         (*, 1)


def ensemble_equations(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> Tensor:
    """X (N, D) shared or (K, N, D) -> z (K, N, 1): TanhNetEnsemble's forward in TorchScript's torch ops."""
    if X.dim() == 2:
        X = X.expand(U.shape[0], -1, -1)
    H = torch.tanh(torch.baddbmm(b.unsqueeze(1), X, U.transpose(1, 2)))  # H_k = tanh(X_k U_kᵀ + b_k)   (K, N, H)
    return torch.baddbmm(c.unsqueeze(1), H, W.transpose(1, 2))  #            z_k = H_k W_kᵀ + c_k         (K, N, 1)


def quietly_traced(slow_forward, *args, **kwargs):
    """``nn.Module._slow_forward`` (what a module runs in place of ``forward`` under torch.jit.trace) without this
    library's TracerWarnings: its input checks compare shapes, which the tracer warns 'might not generalize'; they
    are Python, not part of the graph. A subclass's own code still warns (the filter names this package)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch_tanhnet\.")
        return slow_forward(*args, **kwargs)
