"""TanhNetFunction's ``vmap`` rule: a vmapped TanhNet is an ensemble, so torch.func's idiom runs the batched Function.

``vmap(functional_call(net, params, (X,)))`` over parameters stacked by
``torch.func.stack_module_state`` calls ``TanhNetFunction`` once with a batch dimension on some
of its inputs. A Function with no ``vmap`` staticmethod and without ``generate_vmap_rule = True`` is
refused by vmap; that flag would batch its forward and backward op by op. This rule instead:

- parameters batched (any of U, b, W, c; the others expanded, a view) → :class:`EnsembleFunction`
  with K = the batch size, X shared or batched: the same equations with a network index, one
  ``baddbmm`` a layer, and its own hand-written backward;
- only X batched (one network, B batches of data) → ``TanhNetFunction`` itself on the B·N rows,
  since each sample's output depends on that sample alone.

Both compute what the unbatched Function computes for each batch element (tested); gradients,
from autograd outside vmap or from ``torch.func.grad`` inside it, come from the hand-written
backwards. The loss is composed by the caller, so this cannot reach the fused C kernel: for
that, use :class:`TanhNetEnsemble`'s ``loss``.
"""

from __future__ import annotations

import torch

from .function import ensemble_network

Tensor = torch.Tensor


def tanhnet_vmap(info, in_dims, X: Tensor, U: Tensor, b: Tensor, W: Tensor, c: Tensor):
    """``TanhNetFunction.vmap``: ((z, H), (0, 0)) for a batch of ``info.batch_size``."""
    from ..network import TanhNetFunction

    B = info.batch_size
    x_dim, *p_dims = in_dims
    if all(d is None for d in in_dims):  # nothing batched at this level
        return TanhNetFunction.apply(X, U, b, W, c), (None, None)
    if all(d is None for d in p_dims):  # one network, B batches of samples: B·N samples
        Xb = X.movedim(x_dim, 0)  # (B, N, D)
        z, H = TanhNetFunction.apply(Xb.reshape(-1, Xb.shape[-1]), U, b, W, c)
        return (z.view(B, -1, 1), H.view(B, -1, H.shape[-1])), (0, 0)
    U, b, W, c = (t.expand(B, *t.shape) if d is None else t.movedim(d, 0) for t, d in zip((U, b, W, c), p_dims))
    Xk = X if x_dim is None else X.movedim(x_dim, 0)  # (N, D) shared, or (B, N, D)
    return ensemble_network(Xk, U, b, W, c), (0, 0)  # U (B, H, D), b (B, H), W (B, 1, H), c (B, 1)
