"""EnsembleSGD and EnsembleAdam: each network's trajectory is torch.optim's on that network alone."""

import io

import pytest
import torch
from conftest import make_data

from torch_tanhnet import TanhNet, TanhNetEnsemble
from torch_tanhnet.ensemble import EnsembleAdam, EnsembleSGD

K = 4
LR = [0.1, 0.5, 0.05, 0.3]
MOMENTUM = [0.0, 0.9, 0.5, 0.99]
DECAY = [0.0, 1e-3, 0.0, 1e-2]


def setup(per_network_data=False):
    torch.manual_seed(0)
    nets = [TanhNet(2, 3, dtype=torch.float64) for _ in range(K)]
    X, y = make_data(40, 2)
    y = (y > 0.5).double()
    if per_network_data:
        X = torch.stack([X * (k + 1) for k in range(K)])
    return nets, TanhNetEnsemble.from_modules(nets), X, y


def train(nets, opts, ens, opt, X, y, steps=100):
    for _ in range(steps):
        for k, (net, o) in enumerate(zip(nets, opts)):
            o.zero_grad()
            net.loss(X if X.dim() == 2 else X[k], y).backward()
            o.step()
        opt.zero_grad()
        ens.loss(X, y).sum().backward()
        opt.step()


def assert_same_networks(nets, ens, tol=1e-10):
    for k, net in enumerate(nets):
        for name in "UbWc":
            torch.testing.assert_close(getattr(ens, name)[k], getattr(net, name).view_as(getattr(ens, name)[k]),
                                       rtol=0, atol=tol)


@pytest.mark.parametrize("per_network_data", [False, True])
def test_sgd_with_per_network_lr_momentum_decay_equals_torch_sgd_per_network(per_network_data):
    nets, ens, X, y = setup(per_network_data)
    opts = [torch.optim.SGD(n.parameters(), lr=LR[k], momentum=MOMENTUM[k], weight_decay=DECAY[k])
            for k, n in enumerate(nets)]
    train(nets, opts, ens, EnsembleSGD(ens.parameters(), lr=LR, momentum=torch.tensor(MOMENTUM, dtype=torch.float64),
                                       weight_decay=DECAY), X, y)
    assert_same_networks(nets, ens)


def test_sgd_with_one_setting_for_all_equals_torch_sgd():
    nets, ens, X, y = setup()
    opts = [torch.optim.SGD(n.parameters(), lr=0.3, momentum=0.9) for n in nets]
    train(nets, opts, ens, EnsembleSGD(ens.parameters(), lr=0.3, momentum=0.9), X, y)
    assert_same_networks(nets, ens)


def test_adam_with_per_network_settings_equals_torch_adam_per_network():
    nets, ens, X, y = setup()
    betas1, betas2, eps = [0.9, 0.5, 0.0, 0.8], [0.999, 0.99, 0.9, 0.95], [1e-8, 1e-6, 1e-3, 0.0]
    # rates at which Adam is not near a sign flip of m/√v: there (lr 0.05 with β1 0.5) a last-bit difference of
    # the first step (torch's addcmul/pow kernels vs this file's foreach ops) grew to 3e-10 in 100 steps
    lr = [0.01, 0.02, 0.005, 0.03]
    opts = [torch.optim.Adam(n.parameters(), lr=lr[k], betas=(betas1[k], betas2[k]), eps=eps[k],
                             weight_decay=DECAY[k]) for k, n in enumerate(nets)]
    opt = EnsembleAdam(ens.parameters(), lr=lr, betas=(betas1, betas2), eps=eps, weight_decay=DECAY)
    train(nets, opts, ens, opt, X, y)
    assert_same_networks(nets, ens)


def test_adam_with_one_setting_for_all_equals_torch_adam():
    nets, ens, X, y = setup()
    opts = [torch.optim.Adam(n.parameters(), lr=0.01) for n in nets]
    train(nets, opts, ens, EnsembleAdam(ens.parameters(), lr=0.01), X, y)
    assert_same_networks(nets, ens)


@pytest.mark.parametrize("make", [
    lambda p: EnsembleSGD(p, lr=LR, momentum=MOMENTUM, weight_decay=DECAY),
    lambda p: EnsembleAdam(p, lr=[lr / 10 for lr in LR], betas=(MOMENTUM[::-1], 0.99)),
], ids=["sgd", "adam"])
def test_a_checkpointed_optimizer_continues_exactly(make):
    _, ens, X, y = setup()
    twin = TanhNetEnsemble(K, dtype=torch.float64)
    twin.load_state_dict(ens.state_dict())
    opt = make(ens.parameters())

    def step(model, o):
        o.zero_grad()
        model.loss(X, y).sum().backward()
        o.step()

    for _ in range(5):
        step(ens, opt)
    buffer = io.BytesIO()
    torch.save({"model": ens.state_dict(), "optim": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    twin.load_state_dict(saved["model"])
    twin_opt = make(twin.parameters())
    twin_opt.load_state_dict(saved["optim"])
    for _ in range(5):
        step(ens, opt)
        step(twin, twin_opt)
    for name in "UbWc":
        assert torch.equal(getattr(twin, name), getattr(ens, name))


def test_a_parameter_without_gradient_is_left_alone():
    _, ens, X, y = setup()
    ens.W.requires_grad_(False)
    W = ens.W.detach().clone()
    opt = EnsembleSGD(ens.parameters(), lr=LR, momentum=0.9)
    ens.loss(X, y).sum().backward()
    opt.step()
    assert torch.equal(ens.W, W)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(lr=[0.1, 0.2]), ValueError, r"lr must be a number or 4 numbers \(one per network\), got shape \(2,\)"),
    (dict(lr=torch.ones(4, 1)), ValueError, r"lr must be a number or 4 numbers .* got shape \(4, 1\)"),
    (dict(lr=0.1, momentum=[0.9] * 5), ValueError, r"momentum must be .*4 numbers .* got shape \(5,\)"),
    (dict(lr=-0.1), ValueError, r"lr must be finite and ≥ 0.0 for every network, got -0.1 for network 0"),
    (dict(lr=[0.1, float("nan"), 0.1, 0.1]), ValueError, r"lr must be finite .* got nan for network 1"),
    (dict(lr="fast"), TypeError, r"lr must be a number or 4 numbers \(one per network\), got str"),
    (dict(lr=[0.1, "a", 0.1, 0.1]), TypeError, r"lr must be a number or 4 numbers"),
    (dict(lr=True), TypeError, r"lr must be a number or 4 numbers"),
])
def test_bad_per_network_settings_are_one_line_errors(kwargs, error, match):
    _, ens, _, _ = setup()
    with pytest.raises(error, match=match) as info:
        EnsembleSGD(ens.parameters(), **kwargs)
    assert "\n" not in str(info.value)


def test_bad_adam_settings_and_parameters_are_one_line_errors():
    _, ens, _, _ = setup()
    with pytest.raises(ValueError, match=r"beta1 must be finite and in \[0.0, 1.0\) for every network, got 1.0"):
        EnsembleAdam(ens.parameters(), betas=([0.9, 1.0, 0.9, 0.9], 0.999))
    with pytest.raises(ValueError, match="betas must be a pair"):
        EnsembleAdam(ens.parameters(), betas=0.9)
    with pytest.raises(ValueError, match=r"same first dimension K \(networks\), got \[3, 4\]"):
        EnsembleSGD([ens.U, torch.zeros(3, 2, requires_grad=True)], lr=0.1)


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
def test_step_hooks_run_as_torch_optim_runs_them(cls):
    """The per-optimizer and global step hooks, in torch's order, once a step (step_hooks.py runs them)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    _, ens, X, y = setup()
    opt = cls(ens.parameters(), lr=0.1)
    calls = []
    handles = [register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre")),
               opt.register_step_pre_hook(lambda o, a, k: calls.append("pre")),
               opt.register_step_post_hook(lambda o, a, k: calls.append("post")),
               register_optimizer_step_post_hook(lambda o, a, k: calls.append("global post"))]
    try:
        ens.loss(X, y).sum().backward()
        opt.step()
        assert calls == ["global pre", "pre", "post", "global post"]
        handles[1].remove()
        opt.register_step_pre_hook(lambda o, a, k: "not a pair")
        with pytest.raises(RuntimeError, match="must return None or a tuple"):
            opt.step()
    finally:
        for h in handles:
            h.remove()


def test_a_profiler_sees_step_and_zero_grad():
    _, ens, X, y = setup()
    opt = EnsembleSGD(ens.parameters(), lr=0.1)
    with torch.profiler.profile() as prof:
        opt.zero_grad()
        ens.loss(X, y).sum().backward()
        opt.step()
    names = {e.key for e in prof.key_averages()}
    assert {"Optimizer.step#EnsembleSGD.step", "Optimizer.zero_grad#EnsembleSGD.zero_grad"} <= names


def test_zero_grad_without_set_to_none_zeroes_in_place():
    _, ens, X, y = setup()
    opt = EnsembleSGD(ens.parameters(), lr=0.1)
    ens.loss(X, y).sum().backward()
    grads = [p.grad for p in ens.parameters()]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.any() for p, g in zip(ens.parameters(), grads))
    opt.zero_grad()
    assert all(p.grad is None for p in ens.parameters())
