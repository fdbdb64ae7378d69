"""The checked public functions: each validates its input, then picks the reference or a fast path.

The reference Functions (``TanhNetFunction``, ``BCEWithLogitsFunction``) run under
``torch.func`` transforms, which need their ``setup_context`` form, and under forward-mode AD
(``torch.autograd.forward_ad``), which needs their jvp; under ``torch.compile`` their twins
without the jvp run (Dynamo does not trace a custom jvp). Everywhere else the fast ones
(:mod:`torch_tanhnet.fast`) run, with the C kernels where :func:`~torch_tanhnet.fast.kernel_for`
finds them and in torch ops otherwise. They compute the same equations and are tested
against the reference.
"""

from __future__ import annotations

import torch

from .checks import check_cost_inputs, check_labels, check_network_inputs
from .cost import BCEWithLogitsFunction, BCEWithLogitsFunctionForCompile
from .fast import FastBCEWithLogitsFunction, FastTanhNetFunction, FusedLossFunction, fused_kernel_for, kernel_for
from .fast import _compiling, _forward_ad_active, _transforms_active
from .network import TanhNetFunction, TanhNetFunctionForCompile

Tensor = torch.Tensor


def tanhnet_with_hidden(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """z (N, 1) and the hidden layer H (N, H) of the seed's network, hand-derived backward."""
    check_network_inputs(X, U, b, W, c)
    if _compiling():  # the reference without its jvp: Dynamo does not trace a custom jvp
        return TanhNetFunctionForCompile.apply(X, U, b, W, c)
    if _transforms_active() or _forward_ad_active():  # the reference composes with torch.func and forward mode
        return TanhNetFunction.apply(X, U, b, W, c)
    return FastTanhNetFunction.apply(kernel_for(X), X, U, b, W, c)


def tanhnet(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor) -> Tensor:
    """The seed's network: z = tanh(X Uᵀ + b) Wᵀ + c, with the hand-derived backward.

    X (N, D), U (H, D), b (H,), W (1, H), c (1,) -> z (N, 1). Raises ValueError or
    TypeError, naming the expected and actual shape or dtype, on bad input.
    """
    return tanhnet_with_hidden(X, U, b, W, c)[0]


def bce_with_logits(z: Tensor, y: Tensor) -> Tensor:
    """The seed's cost ε = (1/N) Σᵢ [yᵢ log(1 + e^(−zᵢ)) + (1 − yᵢ) log(1 + e^(zᵢ))].

    The positive mean binary cross-entropy (the seed's first line for L lacks a
    minus sign; see :mod:`torch_tanhnet.cost`). Equals
    ``torch.nn.functional.binary_cross_entropy_with_logits(z, y)``. y must have
    z's shape and dtype, values in [0, 1] (soft labels allowed): a shape mismatch
    is an error, never a silent broadcast.
    """
    check_cost_inputs(z, y)
    if _compiling():
        return BCEWithLogitsFunctionForCompile.apply(z, y)
    if _transforms_active() or _forward_ad_active():
        return BCEWithLogitsFunction.apply(z, y)
    return FastBCEWithLogitsFunction.apply(kernel_for(z), z, y)


def tanhnet_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """ε = bce_with_logits(tanhnet(X, U, b, W, c), y), fused: the training path.

    Same value and first derivatives as the composition, from one pass that finds every
    gradient during the forward. Second derivatives need the composition (this raises
    if differentiated twice); under torch.compile, torch.func, forward-mode AD, or when
    y needs a gradient, the composition is what runs.
    """
    check_network_inputs(X, U, b, W, c)
    check_labels(y, (X.shape[0], 1), X.dtype, X.device)
    return fused_loss(X, U, b, W, c, y)


def fused_loss(X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor, y: Tensor) -> Tensor:
    """:func:`tanhnet_loss` without the input checks, for callers that made them (``TanhNet.loss``)."""
    if _compiling() or _transforms_active() or _forward_ad_active() or y.requires_grad:
        return bce_with_logits(tanhnet(X, U, b, W, c), y)
    return FusedLossFunction.apply(fused_kernel_for(X, U), X, U, b, W, c, y)
