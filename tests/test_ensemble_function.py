"""The ensemble's reference Functions: gradcheck, gradgradcheck, forward mode, and equality with K TanhNets."""

import pytest
import torch
from conftest import make_data, make_params
from torch.autograd import gradcheck, gradgradcheck

from torch_tanhnet import TanhNetFunction, bce_with_logits
from torch_tanhnet.ensemble.function import EnsembleBCEFunction, EnsembleFunction, ensemble_reference_loss

SHAPES = [(1, 1, 2, 3), (3, 4, 2, 3), (2, 5, 3, 4), (4, 2, 1, 1)]  # (K, N, D, H)


def stacked_params(K, D, H, requires_grad=True):
    """K networks' parameters (make_params with seeds 0..K-1), stacked: U (K, H, D), b (K, H), W (K, 1, H), c (K, 1)."""
    nets = [make_params(D, H, seed=k, requires_grad=False) for k in range(K)]
    return [torch.stack(p).requires_grad_(requires_grad) for p in zip(*nets)], nets


def ensemble_data(K, N, D, shared, requires_grad=True):
    if shared:
        X, _ = make_data(N, D, requires_grad=requires_grad)
        return X
    return torch.stack([make_data(N, D, seed=10 + k)[0] for k in range(K)]).requires_grad_(requires_grad)


@pytest.mark.parametrize("shared", [True, False], ids=["shared X", "X per network"])
@pytest.mark.parametrize("K,N,D,H", SHAPES)
def test_gradcheck_and_gradgradcheck_of_the_network(K, N, D, H, shared):
    params, _ = stacked_params(K, D, H)
    X = ensemble_data(K, N, D, shared)
    assert gradcheck(EnsembleFunction.apply, (X, *params))
    assert gradgradcheck(EnsembleFunction.apply, (X, *params))


@pytest.mark.parametrize("shared", [True, False], ids=["shared X", "X per network"])
@pytest.mark.parametrize("K,N,D,H", SHAPES)
def test_forward_mode_matches_finite_differences(K, N, D, H, shared):
    params, _ = stacked_params(K, D, H)
    X = ensemble_data(K, N, D, shared)
    assert gradcheck(EnsembleFunction.apply, (X, *params), check_forward_ad=True, check_backward_ad=False,
                     check_undefined_grad=False, check_batched_grad=False)
    assert gradcheck(ensemble_reference_loss, (X, *params, torch.rand(K, N, 1, dtype=torch.float64)),
                     check_forward_ad=True, check_backward_ad=False, check_undefined_grad=False)


@pytest.mark.parametrize("K,N,D,H", SHAPES)
def test_gradcheck_and_gradgradcheck_of_the_cost_and_the_composition(K, N, D, H):
    z = torch.randn(K, N, 1, dtype=torch.float64, requires_grad=True)
    y = torch.rand(K, N, 1, dtype=torch.float64, requires_grad=True)
    assert gradcheck(EnsembleBCEFunction.apply, (z, y))
    assert gradgradcheck(EnsembleBCEFunction.apply, (z, y))
    params, _ = stacked_params(K, D, H)
    X = ensemble_data(K, N, D, shared=True)
    y_shared = torch.rand(N, 1, dtype=torch.float64, requires_grad=True)
    assert gradgradcheck(ensemble_reference_loss, (X, *params, y_shared))


@pytest.mark.parametrize("shared", [True, False], ids=["shared X", "X per network"])
def test_equals_K_separate_networks(shared):
    K, N, D, H = 4, 9, 3, 5
    params, nets = stacked_params(K, D, H)
    X = ensemble_data(K, N, D, shared)
    y = torch.rand(K, N, 1, dtype=torch.float64)
    eps = ensemble_reference_loss(X, *params, y)
    weights = torch.arange(1.0, K + 1, dtype=torch.float64)  # each network's ε̄_k differs
    grads = torch.autograd.grad((weights * eps).sum(), (X, *params))
    X_bar = torch.zeros_like(X)
    for k in range(K):
        Xk = (X if shared else X[k]).detach().requires_grad_(True)
        p = [t.clone().requires_grad_(True) for t in nets[k]]
        z, Hk = TanhNetFunction.apply(Xk, *p)
        zk, Hens = EnsembleFunction.apply(X, *params)
        torch.testing.assert_close(zk[k], z, rtol=0, atol=1e-12)
        torch.testing.assert_close(Hens[k], Hk, rtol=0, atol=1e-12)
        e = bce_with_logits(z, y[k])
        torch.testing.assert_close(eps[k], e, rtol=0, atol=1e-12)
        g = torch.autograd.grad(weights[k] * e, (Xk, *p))
        for mine, ref in zip((grad[k] for grad in grads[1:]), g[1:]):
            torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)
        if shared:
            X_bar += g[0]
        else:
            X_bar[k] = g[0]
    torch.testing.assert_close(grads[0], X_bar, rtol=0, atol=1e-12)  # a shared X gets Σ_k of the networks' X̄


def test_a_gradient_reaching_the_hidden_layer_is_added():
    params, _ = stacked_params(2, 2, 3)
    X = ensemble_data(2, 4, 2, shared=True)
    z, H = EnsembleFunction.apply(X, *params)
    (z.sum() + (H ** 2).sum()).backward()
    mine = [t.grad.clone() for t in (X, *params)]
    for t in (X, *params):
        t.grad = None
    G = torch.baddbmm(params[1].unsqueeze(1), X.expand(2, -1, -1), params[0].mT)
    Hr = torch.tanh(G)
    zr = torch.baddbmm(params[3].unsqueeze(1), Hr, params[2].mT)
    (zr.sum() + (Hr ** 2).sum()).backward()
    for a, t in zip(mine, (X, *params)):
        torch.testing.assert_close(a, t.grad, rtol=0, atol=1e-12)
