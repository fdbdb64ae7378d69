"""Backward passes other than one ``loss.backward()``, on every public path against plain autograd.

- A graph kept (``retain_graph=True``) and run again: each backward hands out tensors of its own. The ensemble's
  ``loss.sum()`` once handed out the very gradients its graph kept, so a caller who clipped the first result in
  place changed the second (silently, through ``.data``) or broke it (an in-place error).
- Batched gradients (``torch.autograd.grad(..., is_grads_batched=True)``, ``jacobian(..., vectorize=True)``,
  gradcheck's batched check): the incoming gradient is a vmap's batched tensor, which the kernels cannot read
  (no storage) and ``_foreach_mul`` cannot take; these once raised torch-internal errors.
"""

import pytest
import torch
from torch.autograd.functional import hessian, jacobian

from torch_tanhnet import TanhNet, TanhNetEnsemble, bce_with_logits, tanhnet, tanhnet_loss

from conftest import make_data

TOL = dict(rtol=1e-12, atol=1e-12)
K = 3


def reference_loss(X, U, b, W, c, y):
    """The same maths in plain autograd, one network (U 2-D) or K (U 3-D, each network's own mean cost)."""
    if U.dim() == 2:
        return torch.nn.functional.binary_cross_entropy_with_logits(torch.tanh(X @ U.T + b) @ W.T + c, y)
    z = torch.tanh(X @ U.mT + b.unsqueeze(1)) @ W.mT + c.unsqueeze(1)
    return torch.nn.functional.binary_cross_entropy_with_logits(z, y.expand_as(z), reduction="none").mean((1, 2))


def reference_network(X, U, b, W, c):
    return torch.tanh(X @ U.T + b) @ W.T + c if U.dim() == 2 else torch.tanh(X @ U.mT + b.unsqueeze(1)) @ W.mT + \
        c.unsqueeze(1)


def _single():
    torch.manual_seed(0)
    return TanhNet(dtype=torch.float64)


def _ensemble():
    return TanhNetEnsemble(K, dtype=torch.float64, seeds=range(K))


def _call(module_factory, method):
    """f(X, U, b, W, c, y) through ``method`` of a module holding U, b, W, c (so its parameters are the inputs)."""
    def f(X, U, b, W, c, y):
        m = module_factory()
        for name, t in zip("UbWc", (U, b, W, c)):
            del m._parameters[name]
            setattr(m, name, t)
        return method(m, X, y)
    return f


# every public path: (name, f(X, U, b, W, c, y), reference, ensemble?)
PATHS = [
    ("TanhNet.loss", _call(_single, lambda m, X, y: m.loss(X, y)), reference_loss, False),
    ("TanhNet.forward", _call(_single, lambda m, X, y: m(X)), lambda X, *p: reference_network(X, *p[:4]), False),
    ("bce_with_logits(TanhNet(X))", _call(_single, lambda m, X, y: bce_with_logits(m(X), y)), reference_loss, False),
    ("tanhnet", lambda X, U, b, W, c, y: tanhnet(X, U, b, W, c), lambda X, *p: reference_network(X, *p[:4]), False),
    ("tanhnet_loss", tanhnet_loss, reference_loss, False),
    ("TanhNetEnsemble.loss", _call(_ensemble, lambda m, X, y: m.loss(X, y)), reference_loss, True),
    ("TanhNetEnsemble.forward", _call(_ensemble, lambda m, X, y: m(X)), lambda X, *p: reference_network(X, *p[:4]),
     True),
]
IDS = [p[0] for p in PATHS]


def inputs(ensemble: bool, N: int = 30):
    X, y = make_data(N, 2)
    y = (y > 0.5).double()
    if ensemble:
        g = torch.Generator().manual_seed(5)
        params = [torch.randn(s, generator=g, dtype=torch.float64) for s in ((K, 3, 2), (K, 3), (K, 1, 3), (K, 1))]
    else:
        g = torch.Generator().manual_seed(5)
        params = [torch.randn(s, generator=g, dtype=torch.float64) for s in ((3, 2), (3,), (1, 3), (1,))]
    return X, [p.requires_grad_() for p in params], y


REDUCTIONS = {"sum": torch.sum, "mean": torch.mean, "weighted": lambda e: (e * torch.linspace(0.5, 2, e.numel(),
                                                                                             dtype=e.dtype
                                                                                             ).view_as(e)).sum()}


@pytest.mark.parametrize("reduce", list(REDUCTIONS))
@pytest.mark.parametrize("name, f, ref, ensemble", PATHS, ids=IDS)
def test_a_retained_graph_gives_fresh_gradients_each_backward(name, f, ref, ensemble, reduce):
    X, params, y = inputs(ensemble)
    want = torch.autograd.grad(REDUCTIONS[reduce](ref(X, *params, y)), params)
    out = REDUCTIONS[reduce](f(X, *params, y))
    first = torch.autograd.grad(out, params, retain_graph=True)
    for g, w in zip(first, want):
        torch.testing.assert_close(g, w, **TOL)
    first[0].data.zero_()  # a caller clips its gradient in place, bypassing autograd's version counter ...
    for g in first[1:]:
        g.mul_(0.5)  # ... or through it
    second = torch.autograd.grad(out, params, retain_graph=True)
    third = torch.autograd.grad(out, params)
    for a, b, w in zip(second, third, want):
        torch.testing.assert_close(a, w, **TOL)
        torch.testing.assert_close(b, w, **TOL)
        assert a.data_ptr() != b.data_ptr()
    assert not {g.data_ptr() for g in first} & {g.data_ptr() for g in second}


@pytest.mark.parametrize("name, f, ref, ensemble", PATHS, ids=IDS)
def test_batched_gradients_equal_one_at_a_time(name, f, ref, ensemble):
    """``is_grads_batched``: B vectors pulled back at once equal B separate backward passes."""
    X, params, y = inputs(ensemble)
    X.requires_grad_()
    out = f(X, *params, y)
    V = torch.randn(4, *out.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    batched = torch.autograd.grad(out, (X, *params), V, is_grads_batched=True, retain_graph=True)
    want_out = ref(X, *params, y)
    for i in range(V.shape[0]):
        one = torch.autograd.grad(want_out, (X, *params), V[i], retain_graph=True)
        for a, b in zip(batched, one):
            torch.testing.assert_close(a[i], b, **TOL)


@pytest.mark.parametrize("name, f, ref, ensemble", PATHS, ids=IDS)
def test_vectorized_jacobian_and_hessian_equal_the_reference(name, f, ref, ensemble):
    X, params, y = inputs(ensemble, N=6)
    U = params[0].detach()
    rest = [p.detach() for p in params[1:]]
    got = jacobian(lambda U_: f(X, U_, *rest, y), U, vectorize=True)
    torch.testing.assert_close(got, jacobian(lambda U_: ref(X, U_, *rest, y), U), **TOL)
    if not ensemble and "loss" in name:
        got = hessian(lambda X_: f(X_, *[p.detach() for p in params], y), X, vectorize=True)
        want = hessian(lambda X_: ref(X_, *[p.detach() for p in params], y), X)
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("name, f, ref, ensemble", PATHS, ids=IDS)
def test_gradcheck_with_batched_gradients(name, f, ref, ensemble):
    X, params, y = inputs(ensemble, N=5)
    X.requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: f(*a, y), (X, *params), check_batched_grad=True)
