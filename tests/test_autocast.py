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


def data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(N, 2, generator=g)
    return X, (X[:, :1] * X[:, 1:] > 0).float()


def grads(params):
    return [p.grad.clone() for p in params]


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
def test_every_single_network_entry_point_equals_the_sequential_under_autocast(low, backward):
    X, y = data()
    torch.manual_seed(1)
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    net = TanhNet.from_sequential(seq)
    for name, (ours, theirs) in single_cases(net, seq, X, y).items():
        values = []
        for f, module in ((ours, net), (theirs, seq)):
            module.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=low):
                value = f()
                if backward == "inside":
                    value.backward()
            if backward == "outside":
                value.backward()
            values.append((value.detach(), grads(module.parameters())))
        (v, g), (v_ref, g_ref) = values
        close(v, v_ref)
        for a, b in zip(g, g_ref):
            assert a.dtype == torch.float32, name  # each gradient in its parameter's dtype
            close(a, b, g_ref[0].abs().max() + 1e-3)


@pytest.mark.parametrize("low", LOW, ids=str)
def test_autocast_output_dtypes_are_plain_torchs(low):
    X, y = data()
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    net = TanhNet.from_sequential(seq)
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
    torch.manual_seed(2)
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    net = TanhNet.from_sequential(seq)
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
def test_every_ensemble_entry_point_equals_k_sequentials_under_autocast(low, backward):
    X, y = data()
    torch.manual_seed(4)
    ens = TanhNetEnsemble(K)
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
        found = []
        for f, module in ((ours, ens), (plain, seqs)):
            module.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=low):
                value = f()
                if backward == "inside":
                    value.backward()
            if backward == "outside":
                value.backward()
            found.append((value.detach(), grads(module.parameters())))
        (v, g), (v_ref, g_ref) = found
        close(v, v_ref)
        for i, a in enumerate(g):  # ens.U (K, H, D) against network k's first Linear weight, ...
            b = torch.stack([g_ref[4 * k + i] for k in range(K)]).reshape(a.shape)
            assert a.dtype == torch.float32, name
            close(a, b, b.abs().max() + 1e-3)
    ens.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=low):
        eps = ens.loss_and_grad(X, y)
    assert eps.dtype == torch.float32 and ens.U.grad.dtype == torch.float32
    close(eps.sum(), found[1][0])
