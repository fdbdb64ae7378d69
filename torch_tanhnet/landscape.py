"""The loss landscape at a point: the full Hessian of the handout's cost ε over the parameters, and its spectrum.

For the handout's 2-3-1 network the parameters are P = H·D + 2H + 1 = 13 numbers, so the whole
(P, P) Hessian is cheap: column i is the Hessian-vector product H eᵢ, the forward-mode
derivative (jvp) of the gradient along eᵢ, as ``torch.func.hessian`` (``jacfwd(jacrev)``)
computes it, through the reference Functions, whose backward and tangent equations are
hand-derived and exact. Columns and samples go in chunks, so memory stays bounded.

Where the gradient vanishes, the signs of the eigenvalues say what the point is: all > 0, a
strict local minimum; one < 0, a saddle (ε falls along its eigenvector); all ≥ 0 with some
= 0, the second-order test cannot tell. The XOR literature lives in that last case: Hamey
(1998) proved that the 2-2-1 XOR network has no local minima (every finite stationary point
has points of lower error arbitrarily close), and Sprinkhuizen-Kuyper & Boers (1999) found
a region of local minima with nonzero error in the 2-3-1 XOR network, the handout's shape. Both
study sigmoid units and their own error function, not this tanh network's cross-entropy, so
they say what to look for here, not what will be found. See docs/derivation.md.

The parameters are flattened in the order U (row by row, as ``U.reshape(-1)``), b, W, c:
index j·D + k is u_jk, then H·D + j is b_j, H·D + H + j is w_j and the last is c.
"""

from __future__ import annotations

import functools
import warnings

import torch

from .amp import off
from .checks import check_features, check_labels, short
from .context import differentiating
from .functional import bce_with_logits, tanhnet
from .module import TanhNet, hooked, overrides_forward

Tensor = torch.Tensor
ORDER = ("U", "b", "W", "c")  # the flattening order of the parameters
TANGENTS = 64  # Hessian columns per forward-over-reverse pass
BUDGET = 2**21  # tangents × samples × hidden units in one pass: bounds its memory (16 MiB a float64 activation)


def flat_parameters(model: TanhNet) -> Tensor:
    """θ (P,): U, b, W, c flattened and concatenated in that order (a detached copy)."""
    return torch.cat([getattr(model, name).detach().reshape(-1) for name in ORDER])


def _check_model_and_dtype(model: TanhNet, dtype: torch.dtype | None) -> None:
    """One-line errors for what :func:`hessian` cannot serve: not a TanhNet, one with hooks, a dtype without an
    eigensolver (half precision) or not a dtype, or a (P, P) matrix larger than the memory this machine has free."""
    if not isinstance(model, TanhNet):
        hint = " (TanhNet.from_sequential converts an nn.Sequential)" if isinstance(model, torch.nn.Sequential) else ""
        if type(model).__name__ == "TanhNetEnsemble":  # by name: the ensemble package imports this one
            hint = (" (for each network of an ensemble: torch_tanhnet.ensemble.hessian.ensemble_gradient_and_hessian"
                    "(X, ensemble.U, ensemble.b, ensemble.W, ensemble.c, y), or hessian(ensemble[k], X, y))")
        raise TypeError(f"model must be a TanhNet, got {type(model).__name__}{hint}")
    if hooked(model):  # the Hessian of the network's own equations: its cost would not be loss()'s
        raise ValueError("this TanhNet has hooks (forward or backward hooks, or spectral_norm, weight_norm or prune, "
                         "which set a weight in one), which the Hessian of the network's equations would not run; "
                         "remove them, or take torch.func.hessian over torch.func.functional_call(model, ...)")
    if overrides_forward(model, TanhNet):
        raise ValueError(f"{type(model).__name__} computes its logits with its own forward, and this Hessian is of "
                         "TanhNet's equations; take torch.func.hessian over torch.func.functional_call(model, ...)")
    model._weights()  # its parameters of the shapes it was built with (one-line errors)
    if dtype is not None and dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32, torch.float64 or None (the model's), got {short(dtype)}")
    if dtype is None and model.U.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the Hessian is computed in float32 or float64, and this model is {model.U.dtype}: "
                        "pass dtype=torch.float64 (the default)")
    from .training.setup import _size, available_memory  # here: training imports this module

    P = sum(getattr(model, name).numel() for name in ORDER)
    need = 2 * P * P * torch.tensor([], dtype=dtype or model.U.dtype).element_size()  # the matrix and its basis
    free = available_memory()
    if free is not None and need > free:
        raise ValueError(f"the Hessian of this model's {P} parameters is a {P}×{P} matrix: {_size(need)} with its "
                         f"basis, more than the {_size(free)} of memory free here (the handout's network has 13)")


def hessian(model: TanhNet, X: Tensor, y: Tensor, *, dtype: torch.dtype | None = torch.float64) -> Tensor:
    """∂²ε/∂θ² (P, P) of ε = bce_with_logits(model(X), y) over θ = (U, b, W, c) flattened (see the module doc).

    X (*, D) and y (*, 1) as for :meth:`TanhNet.loss`. Computed in ``dtype`` (default float64, so that
    the signs of small eigenvalues can be trusted; None keeps the model's dtype). Only the cost ε:
    an optimiser's weight decay λ would add λ·I.
    """
    if differentiating():  # it detaches its inputs: an outer jacrev or jacfwd read its derivative as 0
        raise RuntimeError("hessian() gives the Hessian at a point and is not differentiated itself (under "
                           "torch.func.jacrev or jacfwd its derivative would read 0); for derivatives of the "
                           "Hessian take torch.func.hessian of the cost over torch.func.functional_call(model, ...)")
    _check_model_and_dtype(model, dtype)
    check_features(X, model.in_features)
    check_labels(y, (*X.shape[:-1], 1), X.dtype, X.device)
    with off(X):  # computed in dtype, as it says: under torch.autocast the products ran in bfloat16
        return _hessian(model, X, y, dtype)


@functools.cache
def forward_mode_ready() -> None:
    """PyTorch's first forward-mode call imports ``torch._decomp.decompositions_for_jvp``, which calls the deprecated
    ``torch.jit.script``: under ``-W error`` (``PYTHONWARNINGS=error``, pytest's ``filterwarnings = error``) that
    DeprecationWarning, PyTorch's own, was raised out of :func:`hessian` (and train.py's first picture, and the
    gradient audit's jvp). Imported here once with it silenced; a PyTorch without that module needs nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import torch._decomp.decompositions_for_jvp  # noqa: F401
        except ImportError:
            pass


def _hessian(model: TanhNet, X: Tensor, y: Tensor, dtype: torch.dtype | None) -> Tensor:
    forward_mode_ready()
    dtype = dtype or model.U.dtype
    theta = flat_parameters(model).to(dtype)
    X = X.detach().reshape(-1, model.in_features).to(dtype)
    y = y.detach().reshape(-1, 1).to(dtype)
    shapes = [getattr(model, name).shape for name in ORDER]
    sizes = [s.numel() for s in shapes]

    def cost(theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
        U, b, W, c = (p.reshape(s) for p, s in zip(theta.split(sizes), shapes))
        return bce_with_logits(tanhnet(X, U, b, W, c), y)  # under torch.func: the reference Functions

    def hvp(v: Tensor, X: Tensor, y: Tensor) -> Tensor:  # ∂²ε/∂θ² v: the jvp of the gradient (forward over reverse)
        return torch.func.jvp(lambda t: torch.func.grad(cost)(t, X, y), (theta,), (v,))[1]

    columns = torch.func.vmap(hvp, in_dims=(0, None, None))  # H e_i for a batch of unit vectors e_i
    P, n = theta.numel(), X.shape[0]
    tangents = min(P, TANGENTS)
    rows = max(1, BUDGET // (tangents * model.hidden_features))
    basis = torch.eye(P, dtype=dtype, device=theta.device).split(tangents)
    # ε is a mean over the samples, so its Hessian is the chunks' Hessians weighted by their share of them
    return sum(torch.cat([columns(E, Xc, yc) for E in basis]) * (Xc.shape[0] / n)
               for Xc, yc in zip(X.split(rows), y.split(rows)))


def hessian_eigenvalues(model: TanhNet, X: Tensor, y: Tensor, *, dtype: torch.dtype | None = torch.float64) -> Tensor:
    """The eigenvalues (P,) of :func:`hessian`, ascending: the first is the least, the last the greatest.

    Raises ValueError when the Hessian holds NaN or infinite numbers (parameters so large that its terms overflow
    the dtype): no eigenvalue of it means anything.
    """
    H = hessian(model, X, y, dtype=dtype)
    if H.is_meta:  # shapes without numbers: the eigenvalues' shape, as eigvalsh gives it there
        return torch.linalg.eigvalsh(H)
    if not bool(torch.isfinite(H).all()):
        bad = [name for name in ORDER if not bool(torch.isfinite(getattr(model, name)).all())]
        bad += [name for name, t in (("X", X), ("y", y)) if not bool(torch.isfinite(t).all())]
        why = (f"{', '.join(bad)} hold{'s' * (len(bad) == 1)} NaN or infinite numbers" if bad
               else f"parameters or inputs too large for {str(H.dtype).removeprefix('torch.')}")
        raise ValueError(f"the Hessian holds NaN or infinite numbers ({why}); it has no eigenvalues")
    return torch.linalg.eigvalsh(H)
