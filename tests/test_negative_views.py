"""Tensors whose negation is pending (the negative bit: ``z.conj().imag``, ``torch._neg_view``) give the numbers of
the negated tensor on every path. The C and Triton kernels read memory through ``data_ptr``, where such a tensor
holds its values before the negation: read raw, ε and every gradient were those of the unnegated inputs."""

import pytest
import torch

from torch_tanhnet import TanhNet, TanhNetEnsemble, bce_with_logits, tanhnet, tanhnet_loss

TOL = dict(rtol=1e-12, atol=1e-12)


def negative_view(t: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor equal to t whose memory holds −t: the negative bit set. Public ops make such tensors
    (``z.conj().imag``: strided, so ``contiguous()`` copied it; a one-element one is contiguous already);
    ``torch._neg_view`` makes one of any shape."""
    view = torch._neg_view(-t)
    assert view.is_neg() and view.is_contiguous() and torch.equal(view, t)
    return view


def data(N=40, D=2, K=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(((K,) if K else ()) + (N, D), generator=g, dtype=torch.float64)
    y = (torch.rand(((K,) if K else ()) + (N, 1), generator=g, dtype=torch.float64) > 0.5).double()
    return X, y


def grads_of(f, *inputs):
    leaves = [t.detach().clone().requires_grad_(True) if t.is_floating_point() else t for t in inputs]
    value = f(*leaves)
    return value.detach(), torch.autograd.grad(value.sum(), [t for t in leaves if t.requires_grad])


@pytest.mark.parametrize("negated", ["X", "y", "both"])
def test_the_single_network_reads_negative_views_as_their_values(negated):
    torch.manual_seed(0)
    net = TanhNet(dtype=torch.float64)
    X, y = data()
    Xv = negative_view(X) if negated in ("X", "both") else X
    yv = negative_view(y) if negated in ("y", "both") else y
    torch.testing.assert_close(net.loss(Xv, yv), net.loss(X, y), **TOL)
    with torch.no_grad():
        torch.testing.assert_close(net.loss(Xv, yv), net.loss(X, y), **TOL)
    torch.testing.assert_close(net(Xv), net(X), **TOL)
    params = [p.detach() for p in (net.U, net.b, net.W, net.c)]
    for f in (lambda X_, *p: tanhnet_loss(X_, *p, yv), lambda X_, *p: tanhnet(X_, *p)):
        got, want = grads_of(f, Xv, *params), grads_of(f, X, *params)
        torch.testing.assert_close(got, want, **TOL)
    z = net(X).detach()
    for zv in (z, negative_view(z)):
        torch.testing.assert_close(grads_of(lambda z_: bce_with_logits(z_, yv), zv), grads_of(
            lambda z_: bce_with_logits(z_, y), z), **TOL)


@pytest.mark.parametrize("K,dtype", [(3, torch.float64), (20, torch.float32)])  # 20 float32: the lane kernel
@pytest.mark.parametrize("shared", [True, False])
def test_the_ensemble_reads_negative_views_as_their_values(K, dtype, shared):
    ens = TanhNetEnsemble(K, dtype=dtype, seeds=list(range(K)))
    X, y = data(K=None if shared else K)
    X, y = X.to(dtype), y.to(dtype)
    Xv, yv = negative_view(X), negative_view(y)
    tol = TOL if dtype == torch.float64 else dict(rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ens.loss(Xv, yv), ens.loss(X, y), **tol)
    with torch.no_grad():
        torch.testing.assert_close(ens.loss(Xv, yv), ens.loss(X, y), **tol)
    ens.zero_grad()
    ens.loss_and_grad(Xv, yv)
    got = [p.grad.clone() for p in ens.parameters()]
    ens.zero_grad()
    ens.loss_and_grad(X, y)
    for a, b in zip(got, [p.grad for p in ens.parameters()]):
        torch.testing.assert_close(a, b, **tol)
