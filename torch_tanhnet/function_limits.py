"""Where PyTorch cannot run a custom ``torch.autograd.Function`` right (torch 2.13), and the torch ops that stand in.

- **Forward mode inside forward mode** (``jacfwd(jacfwd(f))``, a ``jvp`` of a ``jvp``: an input Hessian by
  forward mode, a PINN's Laplacian): PyTorch runs the inner level's hand-written ``jvp`` with the outer levels'
  tangents switched off, so every tangent of a tangent through the Function is dropped without an error
  (pytorch/pytorch#197867, open). jacfwd(jacfwd) of the network read 0 where its input Hessian is not; reverse
  mode, forward over reverse and reverse over forward (``jacrev``, ``torch.func.hessian``, ``jacrev(jacfwd)``)
  were right. The dropped term, along a second direction (primes): Ḣ = (1 − H²) ⊙ Ġ differentiates to
  Ḣ′ = (1 − H²) ⊙ Ġ′ − 2H ⊙ H′ ⊙ Ġ, and the jvp's saved H is a constant to the outer level: −2H ⊙ H′ ⊙ Ġ is lost.
- **torch.jit.trace**: the graph holds the Function as a Python op, which ``torch.jit.save`` cannot write
  ("Could not export Python function call"), and a traced model is mostly made to be saved.
- **torch.func transforms and dual numbers inside torch.compile**: Dynamo cannot vmap a captured Function whose
  inputs require grad from outside the vmap, as a model's parameters do (``torch.compile(vmap(model))``,
  ``jacfwd``, ``hessian``: an InternalTorchDynamoError, pytorch/pytorch#129845, open); a compiled ``grad`` of a
  generic Function whose backward reads ``ctx.needs_input_grad`` returned a zero gradient in a ten-line
  reproduction (it read False there); and the Functions compiled code runs have no jvp (Dynamo does not trace
  one), so dual numbers through a model failed ("You must implement the jvp function"). Dynamo cannot read the
  interpreter stack to tell one transform from another, so every transform and every dual number in compiled
  code runs the torch ops (and autograd's derivatives of them: no hand-written one runs there).

There the public functions run a reference Function's forward as plain torch ops (:func:`apply_reference`), the
same equations, which torch differentiates to every order (the cost's line is written so that its derivative is
right at z = 0 too: :func:`torch_tanhnet.cost.sample_costs`); the Functions' own ``jvp`` refuses the first case
(:func:`refuse_nested_forward`) rather than give a wrong number to a caller of ``.apply``.
"""

from __future__ import annotations

import torch

from .context import compiling, forward_ad_active, nested_forward, tracing, transforms_active

Tensor = torch.Tensor


def plain_ops_needed() -> bool:
    """Whether a reference Function must give way to its forward's torch ops here: forward mode inside forward mode,
    a torch.func transform or dual numbers while torch.compile traces, or torch.jit.trace. About 0.1 µs outside
    transforms."""
    if compiling():  # (first: Dynamo cannot trace the interpreter stack that nested_forward reads)
        return transforms_active() or forward_ad_active()  # dual numbers: the compile twins have no jvp
    return tracing() or nested_forward()


def apply_reference(function: type[torch.autograd.Function], *inputs: Tensor):
    """``function.apply(*inputs)`` for a reference Function, or, where PyTorch cannot run it right
    (:func:`plain_ops_needed`), its forward called as a plain function: the same equations as torch ops."""
    if plain_ops_needed():
        return function.forward(*inputs)
    return function.apply(*inputs)


def refuse_nested_forward(name: str) -> None:
    """Raised from a reference Function's ``jvp`` reached under nested forward mode (its own ``.apply`` called
    there, not the public functions, which go round it): the answer would be silently wrong."""
    if nested_forward():
        raise RuntimeError(f"{name}'s hand-written jvp cannot be differentiated by an outer forward-mode transform "
                           "(jvp of a jvp, jacfwd(jacfwd(...))): PyTorch drops a custom Function's second-order "
                           "tangents there (pytorch/pytorch#197867); call torch_tanhnet's public functions or modules "
                           "instead (tanhnet, bce_with_logits, TanhNet, TanhNetEnsemble), which run the same "
                           "equations as torch ops there, or differentiate in reverse mode (jacrev, hessian)")
