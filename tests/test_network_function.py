"""TanhNetFunction: the hand-written backward against gradcheck, autograd and the seed's scalar equations."""

import inspect

import pytest
import torch
from conftest import make_data, make_params
from torch.autograd import gradcheck, gradgradcheck

from torch_tanhnet import TanhNetFunction, bce_with_logits, tanhnet, tanhnet_with_hidden
from torch_tanhnet.audit.reference import loss_reference, network_reference
from torch_tanhnet.audit.scalar import scalar_forward_backward

SHAPES = [(1, 2, 3), (5, 2, 3), (7, 1, 1), (4, 3, 5), (9, 4, 2)]  # (N, D, H), N = 1 included


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("N,D,H", SHAPES)
def test_gradcheck_float64(N, D, H, fast_mode):
    X, _ = make_data(N, D, requires_grad=True)
    params = make_params(D, H)
    # both outputs (z and H) and every input (X, U, b, W, c) are checked
    assert gradcheck(TanhNetFunction.apply, (X, *params), fast_mode=fast_mode)


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("N,D,H", SHAPES)
def test_gradgradcheck_float64(N, D, H, fast_mode):
    X, _ = make_data(N, D, requires_grad=True)
    params = make_params(D, H)
    assert gradgradcheck(TanhNetFunction.apply, (X, *params), fast_mode=fast_mode)


@pytest.mark.parametrize("N,D,H", SHAPES)
def test_gradgradcheck_of_network_through_cost(N, D, H):
    # second derivatives of the full training cost, both hand-written Functions composed
    X, y = make_data(N, D, requires_grad=True)
    params = make_params(D, H)
    assert gradgradcheck(lambda *a: bce_with_logits(tanhnet(*a), y), (X, *params))


@pytest.mark.parametrize("N,D,H", SHAPES)
def test_backward_equals_autograd_on_plain_ops(N, D, H):
    X, y = make_data(N, D, requires_grad=True)
    params = make_params(D, H)
    inputs = (X, *params)
    mine = torch.autograd.grad(bce_with_logits(tanhnet(*inputs), y), inputs)
    ref = torch.autograd.grad(loss_reference(*inputs, y), inputs)
    for name, a, r in zip("XUbWc", mine, ref):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-15, msg=f"gradient of {name}")


def test_backward_with_arbitrary_upstream_gradient():
    # z̄ comes from any loss, not only the seed's: use a random upstream gradient
    X, _ = make_data(6, 2, requires_grad=True)
    params = make_params(2, 3)
    z_bar = torch.randn(6, 1, dtype=torch.float64)
    mine = torch.autograd.grad(tanhnet(X, *params), (X, *params), z_bar)
    ref = torch.autograd.grad(network_reference(X, *params)[2], (X, *params), z_bar)
    for name, a, r in zip("XUbWc", mine, ref):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-15, msg=f"gradient of {name}")


def test_forward_equals_plain_ops_and_returns_hidden_layer():
    X, _ = make_data(6, 2)
    params = make_params(2, 3)
    z, H = tanhnet_with_hidden(X, *params)
    G_ref, H_ref, z_ref = network_reference(X, *params)
    torch.testing.assert_close(z, z_ref, rtol=1e-14, atol=0)
    torch.testing.assert_close(H, H_ref, rtol=1e-14, atol=0)
    assert z.shape == (6, 1) and H.shape == (6, 3)


def test_backward_equals_seed_scalar_equations():
    # the seed's own 2-3-1 shape; every adjoint of its scalar-form backward, loop by loop
    X, y = make_data(8, 2, seed=3)
    U, b, W, c = make_params(2, 3, seed=4)
    want = scalar_forward_backward(X, U.detach(), b.detach(), W.detach(), c.detach(), y)

    X.requires_grad_(True)
    z, H = tanhnet_with_hidden(X, U, b, W, c)
    z.retain_grad()
    eps = bce_with_logits(z, y)
    eps.backward()
    torch.testing.assert_close(eps.detach(), want["eps"], rtol=1e-13, atol=0)
    torch.testing.assert_close(z.grad, want["z_bar"], rtol=1e-13, atol=1e-16)  # z̄_i = (o_i − y_i)/N
    torch.testing.assert_close(W.grad, want["W_bar"], rtol=1e-12, atol=1e-16)  # w̄_j = Σ_i z̄_i h_ij
    torch.testing.assert_close(c.grad, want["c_bar"], rtol=1e-12, atol=1e-16)  # c̄ = Σ_i z̄_i
    torch.testing.assert_close(U.grad, want["U_bar"], rtol=1e-12, atol=1e-16)  # ū_jk = Σ_i ḡ_ij x_ik
    torch.testing.assert_close(b.grad, want["b_bar"], rtol=1e-12, atol=1e-16)  # b̄_j = Σ_i ḡ_ij
    torch.testing.assert_close(X.grad, want["X_bar"], rtol=1e-12, atol=1e-16)  # x̄_ik = Σ_j ḡ_ij u_jk
    # the intermediate adjoints h̄ and ḡ, from the z̄ that the backward received
    H_bar = z.grad @ W.detach()  # h̄_ij = z̄_i w_j
    torch.testing.assert_close(H_bar, want["H_bar"], rtol=1e-12, atol=1e-16)
    torch.testing.assert_close(H_bar * (1 - H.detach() ** 2), want["G_bar"], rtol=1e-12, atol=1e-16)  # ḡ_ij


def test_forward_builds_no_primitive_op_graph():
    X, _ = make_data(4, 2, requires_grad=True)
    X2 = X * 1.0  # a non-leaf input: its own grad_fn must be the next function
    params = make_params(2, 3)
    z, H = TanhNetFunction.apply(X2, *params)
    assert type(z.grad_fn).__name__ == "TanhNetFunctionBackward"
    assert H.grad_fn is z.grad_fn  # both outputs belong to the one node
    nxt = [f for f, _ in z.grad_fn.next_functions]
    assert nxt[0] is X2.grad_fn  # X's own node, no addmm/tanh in between
    for f, p in zip(nxt[1:], params):
        assert type(f).__name__ == "AccumulateGrad" and f.variable is p


def test_backward_calls_no_autograd(monkeypatch):
    X, y = make_data(5, 2, requires_grad=True)
    params = make_params(2, 3)
    eps = bce_with_logits(tanhnet(X, *params), y)
    launch = torch.autograd.backward
    calls = []
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append("grad"))
    monkeypatch.setattr(torch.autograd, "backward", lambda *a, **k: calls.append("backward"))
    launch(eps)
    assert calls == [] and X.grad is not None
    for fn in (TanhNetFunction.backward, TanhNetFunction.backward_equations):
        source = inspect.getsource(fn)
        assert "autograd" not in source and ".backward(" not in source


def test_skips_gradients_not_needed():
    X, _ = make_data(4, 2)  # X needs no gradient
    U, b, W, c = make_params(2, 3)
    W.requires_grad_(False)
    z = tanhnet(X, U, b, W, c)
    g = torch.autograd.grad(z.sum(), (U, b, c))
    assert all(t is not None for t in g)
    _, H = TanhNetFunction.apply(X, U, b, W, c)
    # a gradient that reaches H alone (z unused) still flows to U and b
    gU, gb = torch.autograd.grad(H.sum(), (U, b))
    G, H_ref, _ = network_reference(X, U, b, W, c)
    rU, rb = torch.autograd.grad(H_ref.sum(), (U, b))
    torch.testing.assert_close(gU, rU, rtol=1e-12, atol=0)
    torch.testing.assert_close(gb, rb, rtol=1e-12, atol=0)


def test_hessian_vector_product_matches_autograd():
    X, y = make_data(6, 2)
    params = make_params(2, 3)
    v = [torch.randn_like(p) for p in params]
    def hvp(loss_fn):
        g = torch.autograd.grad(loss_fn(), params, create_graph=True)
        return torch.autograd.grad(g, params, v)
    mine = hvp(lambda: bce_with_logits(tanhnet(X, *params), y))
    ref = hvp(lambda: loss_reference(X, *params, y))
    for a, r in zip(mine, ref):
        torch.testing.assert_close(a, r, rtol=1e-11, atol=1e-14)
