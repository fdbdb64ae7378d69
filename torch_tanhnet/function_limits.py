"""Where PyTorch cannot run a custom ``torch.autograd.Function`` right (torch 2.13), and the torch ops that stand in.

- **Forward mode inside forward mode** (``jacfwd(jacfwd(f))``, a ``jvp`` of a ``jvp``: an input Hessian by
  forward mode, a PINN's Laplacian): PyTorch runs the inner level's hand-written ``jvp`` with the outer levels'
  tangents switched off, so every tangent of a tangent through the Function is dropped without an error
  (pytorch/pytorch#197867, open). jacfwd(jacfwd) of the network read 0 where its input Hessian is not; reverse
  mode and forward over reverse (``jacrev``, ``torch.func.hessian``) were right.
- **torch.jit.trace**: the graph holds the Function as a Python op, which ``torch.jit.save`` cannot write
  ("Could not export Python function call"), and a traced model is mostly made to be saved.
- **torch.func transforms inside torch.compile** (``torch.compile(vmap(model))``, ``jacfwd``, ``hessian``):
  Dynamo cannot vmap the Function it captures (pytorch/pytorch#129845, open): an InternalTorchDynamoError. Dynamo
  cannot read the interpreter stack either, to tell these from ``grad`` and ``jacrev``, so every transform in
  compiled code runs the torch ops (and autograd's backward of them, not the hand-written one).

There the public functions run a reference Function's forward as plain torch ops (:func:`apply_reference`), the
same equations, which torch differentiates to every order (the cost's line is written so that its derivative is
right at z = 0 too: :func:`torch_tanhnet.cost.sample_costs`); the Functions' own ``jvp`` refuses the first case
(:func:`refuse_nested_forward`) rather than give a wrong number to a caller of ``.apply``.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: False)
_interpreters = getattr(torch._C._functorch, "get_interpreter_stack", lambda: None)
_JVP = torch._C._functorch.TransformType.Jvp
_DIFFERENTIATING = (torch._C._functorch.TransformType.Grad, _JVP)
_compiling = getattr(torch.compiler, "is_compiling", lambda: False)
_tracing = torch._C._is_tracing


def nested_forward() -> bool:
    """Inside a forward-mode transform inside another: two or more of torch.func's Jvp levels (jvp, jacfwd; a
    ``torch.autograd.forward_ad.dual_level`` cannot hold one, nor nest). About 1 µs under transforms, 0.05 µs
    elsewhere."""
    if not _transforms_active():
        return False
    stack = _interpreters()
    if stack is None:  # a torch that does not show its levels: assume nested, where the torch ops are right anyway
        return True
    return sum(1 for level in stack if level.key() == _JVP) >= 2


def differentiating() -> bool:
    """Inside a torch.func transform that takes a derivative (grad, vjp, jacrev, jvp, jacfwd), not vmap alone; also
    where the stack cannot be read. About 1 µs under transforms."""
    if not _transforms_active():
        return False
    stack = _interpreters()
    return stack is None or any(level.key() in _DIFFERENTIATING for level in stack)


def plain_ops_needed() -> bool:
    """Whether a reference Function must give way to its forward's torch ops here: forward mode inside forward mode,
    any torch.func transform while torch.compile traces, or torch.jit.trace. About 0.1 µs outside transforms."""
    if _compiling():  # (first: Dynamo cannot trace the interpreter stack that nested_forward reads)
        return _transforms_active()
    return _tracing() or (_transforms_active() and nested_forward())


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
