"""Under torch.autocast the network follows nn.Linear (products in autocast's dtype) and the cost follows
binary_cross_entropy_with_logits (float32), on every entry point, with the backward inside or outside the region
and through a gradient penalty: as plain torch does. Before, a backward outside the region met bfloat16 beside
float32 in the reference Functions and failed, and a TanhNet after another layer refused the low-precision X."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torch_tanhnet import TanhNet, TanhNetEnsemble, TanhNetFunction, bce_with_logits, tanhnet, tanhnet_loss
from torch_tanhnet.ensemble import ensemble_loss, ensemble_reference_loss

LOW = [torch.bfloat16, torch.float16]
K, N = 3, 40


def data(device="cpu"):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, 2, generator=g).to(device)
    return X, (X[:, :1] * X[:, 1:] > 0).float()


def pair(seed, device="cpu"):
    """A seeded Sequential and the TanhNet holding its weights."""
    torch.manual_seed(seed)
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).to(device)
    return seq, TanhNet.from_sequential(seq)


def grads(params):
    return [p.grad.clone() for p in params]


def run(f, module, low, backward, device="cpu"):
    """f() under autocast in ``low``, its backward inside the region or after it: (value, module's gradients)."""
    module.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=low):
        value = f()
        if backward == "inside":
            value.backward()
    if backward == "outside":
        value.backward()
    return value.detach(), grads(module.parameters())


def close(a, b, scale=None):
    """Equal to low-precision rounding: both sides compute in the same dtype, in other orders."""
    scale = scale if scale is not None else b.abs().max().clamp_min(1e-3)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    assert (a.float() - b.float()).abs().max() <= 3e-2 * scale, (a, b)


def single_cases(net, seq, X, y):
    """(ours, plain torch) pairs: callables returning a scalar to differentiate."""
    U, b, W, c = net.U, net.b, net.W, net.c
    plain = lambda: F.binary_cross_entropy_with_logits(seq(X), y)  # noqa: E731
    return {
        "TanhNet.loss": (lambda: net.loss(X, y), plain),
        "BCE(TanhNet(X))": (lambda: F.binary_cross_entropy_with_logits(net(X), y), plain),
        "predict_proba": (lambda: net.predict_proba(X).sum(), lambda: torch.sigmoid(seq(X)).sum()),
        "tanhnet_loss": (lambda: tanhnet_loss(X, U, b, W, c, y), plain),
        "bce_with_logits(tanhnet)": (lambda: bce_with_logits(tanhnet(X, U, b, W, c), y), plain),
        "TanhNetFunction.apply": (
            lambda: F.binary_cross_entropy_with_logits(TanhNetFunction.apply(X, U, b, W, c)[0], y), plain),
    }


@pytest.mark.parametrize("low", LOW, ids=str)
@pytest.mark.parametrize("backward", ["outside", "inside"])
def test_every_single_network_entry_point_equals_the_sequential_under_autocast(low, backward, device):
    """``device``: cpu, and cuda on a lent GPU (conftest; .ci/gpu), where the cast tensors meet the Triton dispatch."""
    X, y = data(device)
    seq, net = pair(1, device)
    for name, (ours, theirs) in single_cases(net, seq, X, y).items():
        (v, g), (v_ref, g_ref) = run(ours, net, low, backward, device), run(theirs, seq, low, backward, device)
        close(v, v_ref)
        for a, b in zip(g, g_ref):
            assert a.dtype == torch.float32, name  # each gradient in its parameter's dtype
            close(a, b, g_ref[0].abs().max() + 1e-3)


@pytest.mark.parametrize("low", LOW, ids=str)
def test_autocast_output_dtypes_are_plain_torchs(low):
    X, y = data()
    seq, net = pair(0)
    with torch.autocast("cpu", dtype=low):
        assert net(X).dtype == seq(X).dtype == low
        assert net.loss(X, y).dtype == F.binary_cross_entropy_with_logits(seq(X), y).dtype == torch.float32
        assert net.predict_proba(X).dtype == low
        with torch.no_grad():
            assert net.loss(X, y).dtype == torch.float32
    assert net(X).dtype == torch.float32  # and nothing changed outside the region


@pytest.mark.parametrize("low", LOW, ids=str)
@pytest.mark.parametrize("wrt", ["parameters", "X"])
def test_a_gradient_penalty_under_autocast_equals_the_sequentials(low, wrt):
    """create_graph=True inside the region: the fused pass's second derivatives go through the reference."""
    X0, y = data()
    seq, net = pair(2)
    found = []
    for module, cost in ((net, lambda X: net.loss(X, y)),
                         (seq, lambda X: F.binary_cross_entropy_with_logits(seq(X), y))):
        X = X0.clone().requires_grad_(wrt == "X")
        inputs = [X] if wrt == "X" else list(module.parameters())
        with torch.autocast("cpu", dtype=low):
            g = torch.autograd.grad(cost(X), inputs, create_graph=True)
            penalty = sum((t.float() ** 2).sum() for t in g)
        penalty.backward()
        found.append((penalty.detach(), grads(module.parameters())))
    (p, g), (p_ref, g_ref) = found
    close(p, p_ref)
    for a, b in zip(g, g_ref):
        close(a, b, max(t.abs().max() for t in g_ref) + 1e-6)


@pytest.mark.parametrize("low", LOW, ids=str)
def test_after_another_layer_under_autocast_as_the_sequential(low):
    """nn.Sequential(nn.Linear(4, 2), TanhNet()): under autocast the Linear hands on a low-precision X."""
    torch.manual_seed(3)
    X, y = torch.randn(N, 4), torch.randint(0, 2, (N, 1)).float()
    pre = nn.Linear(4, 2)
    body = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    ours, theirs = nn.Sequential(pre, TanhNet.from_sequential(body)), nn.Sequential(pre, *body)
    with torch.autocast("cpu", dtype=low):
        z, z_ref = ours(X), theirs(X)
        eps = ours[1].loss(pre(X), y)
        eps_ref = F.binary_cross_entropy_with_logits(z_ref, y)
    close(z, z_ref)
    close(eps, eps_ref)
    eps.backward()
    assert pre.weight.grad is not None and ours[1].U.grad.dtype == torch.float32


@pytest.mark.parametrize("low", LOW, ids=str)
@pytest.mark.parametrize("backward", ["outside", "inside"])
def test_every_ensemble_entry_point_equals_k_sequentials_under_autocast(low, backward, device):
    X, y = data(device)
    torch.manual_seed(4)
    ens = TanhNetEnsemble(K, device=device)
    seqs = nn.ModuleList(ens[k].to_sequential() for k in range(K))
    P = lambda: (ens.U, ens.b, ens.W, ens.c)  # noqa: E731
    plain = lambda: torch.stack([F.binary_cross_entropy_with_logits(s(X), y) for s in seqs]).sum()  # noqa: E731
    cases = {
        "loss": lambda: ens.loss(X, y).sum(),
        "BCE(ens(X))": lambda: F.binary_cross_entropy_with_logits(ens(X), y.expand(K, -1, -1)) * K,
        "ensemble_loss": lambda: ensemble_loss(X, *P(), y).sum(),
        "ensemble_reference_loss": lambda: ensemble_reference_loss(X, *P(), y).sum(),
    }
    for name, ours in cases.items():
        (v, g), (v_ref, g_ref) = run(ours, ens, low, backward, device), run(plain, seqs, low, backward, device)
        close(v, v_ref)
        for i, a in enumerate(g):  # ens.U (K, H, D) against network k's first Linear weight, ...
            b = torch.stack([g_ref[4 * k + i] for k in range(K)]).reshape(a.shape)
            assert a.dtype == torch.float32, name
            close(a, b, b.abs().max() + 1e-3)
    ens.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=low):
        eps = ens.loss_and_grad(X, y)
    assert eps.dtype == torch.float32 and ens.U.grad.dtype == torch.float32
    close(eps.sum(), v_ref)


@pytest.mark.parametrize("low", LOW, ids=str)
def test_loss_and_grad_takes_what_loss_takes_under_autocast(low):
    """X or y in autocast's dtype (as a layer before hands them on): loss took them, loss_and_grad refused them."""
    X, y = data()
    torch.manual_seed(5)
    ens = TanhNetEnsemble(K)
    for Xa, ya in ((X.to(low), y), (X, y.to(low)), (X.to(low), y.to(low))):
        ens.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=low):
            expected = ens.loss(Xa, ya)
        expected.sum().backward()
        want = grads(ens.parameters())
        ens.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=low):
            eps = ens.loss_and_grad(Xa, ya)
        torch.testing.assert_close(eps, expected.detach())
        for a, b in zip(grads(ens.parameters()), want):
            torch.testing.assert_close(a, b)


def test_what_is_not_a_tensor_is_told_in_one_line_under_autocast():
    X, y = data()
    net, ens = TanhNet(), TanhNetEnsemble(K)
    U, b, W, c = net.U, net.b, net.W, net.c
    calls = [lambda: net.loss(X, [1.0]), lambda: tanhnet_loss(X, U, b, W, c, None), lambda: bce_with_logits(y, None),
             lambda: ens.loss(X, None), lambda: ensemble_loss(X, ens.U, ens.b, ens.W, ens.c, None),
             lambda: tanhnet(X, [1.0], b, W, c), lambda: ens.loss_and_grad(X, None)]
    for call in calls:
        with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(TypeError, match=r"must be a torch\.Tensor"):
            call()


def test_the_hessians_are_computed_in_the_dtype_they_state_under_autocast():
    """They were computed in part in bfloat16 (the ensemble's came back in bfloat16 beside a float32 gradient)."""
    from torch_tanhnet import hessian
    from torch_tanhnet.ensemble.hessian import ensemble_gradient, ensemble_gradient_and_hessian

    X, y = data()
    net, ens = TanhNet(), TanhNetEnsemble(K)
    P = (ens.U, ens.b, ens.W, ens.c)
    plain = (hessian(net, X, y, dtype=torch.float32), *ensemble_gradient_and_hessian(X, *P, y),
             ensemble_gradient(X, *P, y))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = (hessian(net, X, y, dtype=torch.float32), *ensemble_gradient_and_hessian(X, *P, y),
                 ensemble_gradient(X, *P, y))
    for a, b in zip(under, plain):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0, atol=0)
