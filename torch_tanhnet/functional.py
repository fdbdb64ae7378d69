"""The checked public functions: each validates its input once, then runs what the dispatch chose.

:func:`torch_tanhnet.kernels.dispatch.implementation` says which implementation serves a call:
the reference Functions (``TanhNetFunction``, ``BCEWithLogitsFunction``) under ``torch.compile``,
``torch.func`` transforms and forward-mode AD, the fast ones (:mod:`torch_tanhnet.kernels.functions`)
everywhere else. Under ``torch.compile`` the reference runs as its twin without the jvp
(``TanhNetFunctionForCompile``): Dynamo does not trace a Function with a custom jvp. Under forward mode inside
forward mode (``jacfwd(jacfwd(f))``) and under torch.func transforms inside torch.compile, where PyTorch cannot run
a custom Function right, the reference's forward runs as plain torch ops (:mod:`torch_tanhnet.function_limits`).
They compute the same equations and are tested against each other.
The underscored functions are the same calls without the checks, for callers that made them.
Under ``torch.autocast`` the public ones follow it as ``F.linear`` and ``F.binary_cross_entropy_with_logits`` do
(:mod:`torch_tanhnet.amp`): the network in autocast's dtype, the cost in float32.
"""

from __future__ import annotations

import torch

from .amp import autocast_dtype, cast, off
from .checks import check_cost_inputs, check_labels, check_network_inputs
from .cost import BCEWithLogitsFunction, BCEWithLogitsFunctionForCompile
from .function_limits import apply_reference
from .kernels.dispatch import compiling, fused_implementation, implementation
from .kernels.functions import FastBCEWithLogitsFunction, FastTanhNetFunction, FusedLossFunction
from .network import TanhNetFunction, TanhNetFunctionForCompile

Tensor = torch.Tensor


def tanhnet_with_hidden(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """z (N, 1) and the hidden layer H (N, H) of the handout's network, hand-derived backward."""
    if (low := autocast_dtype(X)) is not None:
        X, U, b, W, c = cast(low, X, U, b, W, c)
        check_network_inputs(X, U, b, W, c)
        with off(X):
            return _tanhnet_with_hidden(X, U, b, W, c)
    check_network_inputs(X, U, b, W, c)
    return _tanhnet_with_hidden(X, U, b, W, c)


def tanhnet(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> Tensor:
    """The handout's network: z = tanh(X Uᵀ + b) Wᵀ + c, with the hand-derived backward.

    X (N, D), U (H, D), b (H,), W (1, H), c (1,) -> z (N, 1). Raises ValueError or
    TypeError, naming the expected and actual shape or dtype, on bad input.
    """
    return tanhnet_with_hidden(X, U, b, W, c)[0]


def bce_with_logits(z: Tensor, y: Tensor) -> Tensor:
    """The handout's cost ε = (1/N) Σᵢ [yᵢ log(1 + e^(−zᵢ)) + (1 − yᵢ) log(1 + e^(zᵢ))].

    The positive mean binary cross-entropy (the handout's first line for L lacks a
    minus sign; see :mod:`torch_tanhnet.cost`). Equals
    ``torch.nn.functional.binary_cross_entropy_with_logits(z, y)`` to rounding, and
    keeps a confidently right answer's small cost e^(−|z|) where torch's reads 0 at
    y = 0, z ≪ 0. y must have z's shape and dtype, values in [0, 1] (soft labels
    allowed): a shape mismatch is an error, never a silent broadcast. Values are not
    checked (as torch does not): a label outside [0, 1] gives softplus(z) − y z,
    which can be negative.
    """
    if autocast_dtype(z) is not None:
        z, y = cast(torch.float32, z, y)
        check_cost_inputs(z, y)
        with off(z):
            return _bce_with_logits(z, y)
    check_cost_inputs(z, y)
    return _bce_with_logits(z, y)


def tanhnet_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """ε = bce_with_logits(tanhnet(X, U, b, W, c), y), fused: the training path.

    Same value and derivatives as the composition, from one pass that finds every gradient
    during the forward; a backward that is itself differentiated (``create_graph=True``)
    recomputes the gradients through the reference's differentiable equations, so second
    derivatives are exact. Under torch.compile, torch.func, forward-mode AD, torch.autocast,
    :func:`~torch_tanhnet.reference_equations`, or when y needs a gradient, the composition
    is what runs.
    """
    if autocast_dtype(X) is not None:
        return bce_with_logits(tanhnet(X, U, b, W, c), y)
    check_network_inputs(X, U, b, W, c)
    check_labels(y, (X.shape[0], 1), X.dtype, X.device)
    return _tanhnet_loss(X, U, b, W, c, y)


def _tanhnet_with_hidden(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    impl = implementation(X, U, b, W, c)
    if impl is None:
        return apply_reference(TanhNetFunctionForCompile if compiling() else TanhNetFunction, X, U, b, W, c)
    return FastTanhNetFunction.apply(impl, X, U, b, W, c)


def _bce_with_logits(z: Tensor, y: Tensor) -> Tensor:
    impl = implementation(z, y)
    if impl is None:
        return apply_reference(BCEWithLogitsFunctionForCompile if compiling() else BCEWithLogitsFunction, z, y)
    return FastBCEWithLogitsFunction.apply(impl, z, y)


def _tanhnet_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    impl = fused_implementation(X, U, b, W, c, y)
    if impl is None:  # compose: the reference under transforms, the composed fast path when y needs a gradient
        return _bce_with_logits(_tanhnet_with_hidden(X, U, b, W, c)[0], y)
    return FusedLossFunction.apply(impl, X, U, b, W, c, y)
