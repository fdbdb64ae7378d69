"""EnsembleSGD and EnsembleAdam: each network's trajectory is torch.optim's on that network alone."""

import copy
import io
import re

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


def assert_same_networks(nets, ens, tol=0.0):
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
    # rates at which Adam is not near a sign flip of m/√v: β1ᵗ and β2ᵗ of per-network betas are a tensor's pow,
    # torch's Python's (1.6 % of them a last bit apart), a difference that grows where m/√v flips sign
    lr = [0.01, 0.02, 0.005, 0.03]
    opts = [torch.optim.Adam(n.parameters(), lr=lr[k], betas=(betas1[k], betas2[k]), eps=eps[k],
                             weight_decay=DECAY[k]) for k, n in enumerate(nets)]
    opt = EnsembleAdam(ens.parameters(), lr=lr, betas=(betas1, betas2), eps=eps, weight_decay=DECAY)
    train(nets, opts, ens, opt, X, y)
    assert_same_networks(nets, ens, tol=1e-10)


def test_adam_with_one_setting_for_all_equals_torch_adam():
    nets, ens, X, y = setup()
    opts = [torch.optim.Adam(n.parameters(), lr=0.01) for n in nets]
    train(nets, opts, ens, EnsembleAdam(ens.parameters(), lr=0.01), X, y)
    assert_same_networks(nets, ens, tol=0)


BIT_FOR_BIT = {  # network k's torch.optim optimizer, and the ensemble's, over 300 steps
    "adam, K rates, decays, eps": (
        lambda n, k: torch.optim.Adam(n.parameters(), lr=[0.05, 0.02, 0.005, 0.03][k], betas=(0.5, 0.999),
                                      eps=[1e-8, 1e-6, 1e-3, 0.0][k], weight_decay=[0.0, 0.01, 0.0, 0.1][k]),
        lambda p: EnsembleAdam(p, lr=[0.05, 0.02, 0.005, 0.03], betas=(0.5, 0.999), eps=[1e-8, 1e-6, 1e-3, 0.0],
                               weight_decay=[0.0, 0.01, 0.0, 0.1])),
    "adam, one setting": (lambda n, k: torch.optim.Adam(n.parameters(), lr=0.05, betas=(0.5, 0.999)),
                          lambda p: EnsembleAdam(p, lr=0.05, betas=(0.5, 0.999))),
    "sgd, K settings": (lambda n, k: torch.optim.SGD(n.parameters(), lr=LR[k], momentum=MOMENTUM[k],
                                                     weight_decay=DECAY[k]),
                        lambda p: EnsembleSGD(p, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)),
    "sgd, one setting": (lambda n, k: torch.optim.SGD(n.parameters(), lr=0.3, momentum=0.9),
                         lambda p: EnsembleSGD(p, lr=0.3, momentum=0.9)),
}


@pytest.mark.parametrize("case", list(BIT_FOR_BIT))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_each_network_follows_torch_optim_bit_for_bit_for_300_steps(dtype, case):
    """The update was θ + (−η/(1 − β1ᵗ))·(m/d), torch's is addcdiv's θ + (−η/(1 − β1ᵗ))·m/d: one rounding apart, a
    last bit that grew to 1e-3 in 300 steps at lr 0.05, β1 0.5 (a newcomer's per-network check). Betas of one value
    for all networks: the bias corrections are Python's floats, as torch's are, and every step matches exactly."""
    make_torch, make_ensemble = BIT_FOR_BIT[case]
    torch.manual_seed(0)
    nets = [TanhNet(2, 3, dtype=dtype) for _ in range(K)]
    ens = TanhNetEnsemble.from_modules(nets)
    X, y = make_data(40, 2, dtype=dtype)
    y = (y > 0.5).to(dtype)
    train(nets, [make_torch(n, k) for k, n in enumerate(nets)], ens, make_ensemble(ens.parameters()), X, y,
          steps=300)
    assert_same_networks(nets, ens, tol=0)


def test_adam_with_one_rate_and_k_betas_takes_its_first_steps_as_torch_does():
    """lr / (1 − β1ᵗ) with one lr and K betas was torch's float-over-tensor division, a reciprocal times the float:
    a last bit off from Python's division (torch's) in about 1 step in 5, from the first step on."""
    nets, ens, X, y = setup()
    betas1 = [0.9, 0.5, 0.3, 0.8]
    opts = [torch.optim.Adam(n.parameters(), lr=0.01, betas=(betas1[k], 0.999)) for k, n in enumerate(nets)]
    train(nets, opts, ens, EnsembleAdam(ens.parameters(), lr=0.01, betas=(betas1, 0.999)), X, y, steps=3)
    assert_same_networks(nets, ens, tol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sgd_on_half_parameters_takes_a_rate_past_their_range_as_torchs_fused_sgd(dtype):
    """lr 1e5 on float16 parameters: torch's fused SGD takes it in float32 (a finite step); a float16 factor made
    every parameter infinite (and torch's foreach SGD refuses it: "cannot be converted to type c10::Half")."""
    torch.manual_seed(0)
    p = torch.randn(2, 3, dtype=dtype).requires_grad_()
    alone = p[0].detach().clone().requires_grad_()
    g = torch.randn(2, 3, dtype=dtype) * 1e-3
    p.grad, alone.grad = g.clone(), g[0].clone()
    twin = p.detach().clone().requires_grad_()  # the same with K rates (review: they were cast to float16: inf)
    twin.grad = g.clone()
    EnsembleSGD([p], lr=1e5).step()
    EnsembleSGD([twin], lr=[1e5, 1e5]).step()
    torch.optim.SGD([alone], lr=1e5, fused=True).step()
    torch.testing.assert_close(twin.detach(), p.detach(), rtol=2**-7, atol=0)  # bfloat16 holds 1e5: its rounding
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p[0].detach(), alone.detach(), rtol=2**-7, atol=0)  # bfloat16: a last bit apart


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
    (dict(lr=-0.1), ValueError, r"^lr must be finite and ≥ 0.0, got -0.1$"),  # one number: no network named
    (dict(lr=[0.1, -0.1, 0.2, 0.3]), ValueError, r"lr must be finite and ≥ 0.0 for every network, got -0.1 for "
                                                  r"network 1"),
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


# ---- a parameter whose first gradient comes later; refused param groups and state_dicts ----

ADAM_LR, EPS = [0.01, 0.02, 0.005, 0.03], [1e-8, 1e-6, 1e-3, 0.0]
BETAS1, BETAS2 = [0.9, 0.5, 0.0, 0.8], [0.999, 0.99, 0.9, 0.95]
MAKE = {
    "sgd": (lambda n, k: torch.optim.SGD(n.parameters(), lr=LR[k], momentum=0.9, weight_decay=DECAY[k]),
            lambda p: EnsembleSGD(p, lr=LR, momentum=0.9, weight_decay=DECAY)),
    "adam": (lambda n, k: torch.optim.Adam(n.parameters(), lr=ADAM_LR[k], betas=(BETAS1[k], BETAS2[k]), eps=EPS[k],
                                           weight_decay=DECAY[k]),
             lambda p: EnsembleAdam(p, lr=ADAM_LR, betas=(BETAS1, BETAS2), eps=EPS, weight_decay=DECAY)),
}


def freeze(modules, step):
    """U frozen for the first 5 steps (its first gradient comes at step 5), c frozen from step 10 on."""
    for m in modules:
        m.U.requires_grad_(step >= 5)
        m.c.requires_grad_(step < 10)


@pytest.mark.parametrize("kind", MAKE)
def test_a_parameter_whose_first_gradient_comes_later_follows_torch_optim(kind):
    make_torch, make_ensemble = MAKE[kind]
    _, ens, X, y = setup()
    nets = [ens[k] for k in range(K)]
    opts = [make_torch(n, k) for k, n in enumerate(nets)]
    opt = make_ensemble(ens.parameters())
    for step in range(20):
        freeze(nets + [ens], step)
        train(nets, opts, ens, opt, X, y, steps=1)
    assert_same_networks(nets, ens, tol=1e-10)


def snapshot(opt):
    return [(g, dict(g)) for g in opt.param_groups]


def assert_unchanged(opt, before):
    assert len(opt.param_groups) == len(before)
    for g, (group, items) in zip(opt.param_groups, before):
        assert g is group and g.keys() == items.keys() and all(g[key] is value for key, value in items.items())


def leaf(*shape, grad=True):
    p = torch.zeros(*shape, dtype=torch.float64, requires_grad=True)
    p.grad = torch.ones_like(p) if grad else None
    return p


@pytest.mark.parametrize("group,error,match", [
    (lambda: {"params": [leaf(5, 3)]}, ValueError,
     r"^lr must be a number or 5 numbers \(one per network\), got shape \(4,\)$"),
    (lambda: {"params": [leaf(4, 3)], "lr": -1.0}, ValueError,
     r"^lr must be finite and ≥ 0.0, got -1.0$"),
    (lambda: {"params": [leaf(4, 3)], "momentum": "high"}, TypeError,
     r"^momentum must be a number or 4 numbers \(one per network\), got str$"),
    (lambda: {"params": [leaf(4, 3), leaf(5, 3)]}, ValueError,
     r"^every parameter of a group must have the same first dimension K \(networks\), got \[4, 5\]$"),
    (lambda: {"params": [leaf(4)[0].detach().requires_grad_()]}, ValueError,
     r"^ensemble optimizers need parameters of shape \(K, ...\), got a 0-d tensor$"),
    (lambda: {"params": []}, ValueError, r"^a param group needs parameters of shape \(K, ...\), got none$"),
], ids=["another K", "bad value", "bad type", "two Ks", "0-d", "empty"])
def test_a_refused_param_group_leaves_the_optimizer_as_it_was(group, error, match):
    _, ens, X, y = setup()
    twin = TanhNetEnsemble(K, dtype=torch.float64)
    twin.load_state_dict(ens.state_dict())
    opt = EnsembleSGD([ens.U, ens.b], lr=LR, momentum=0.9)
    before = snapshot(opt)
    with pytest.raises(error, match=match):
        opt.add_param_group(group())
    assert_unchanged(opt, before)
    ens.loss(X, y).sum().backward()
    opt.step()
    opt.add_param_group({"params": [ens.W, ens.c], "lr": 0.2})
    twin_opt = EnsembleSGD([twin.U, twin.b], lr=LR, momentum=0.9)
    twin.loss(X, y).sum().backward()
    twin_opt.step()
    twin_opt.add_param_group({"params": [twin.W, twin.c], "lr": 0.2})
    for model, o in ((ens, opt), (twin, twin_opt)):
        for _ in range(3):
            o.zero_grad()
            model.loss(X, y).sum().backward()
            o.step()
    assert opt.param_groups[1]["networks"] == K
    for name in "UbWc":
        assert torch.equal(getattr(twin, name), getattr(ens, name))


def stepped(opt, model, X, y, steps=2):
    for _ in range(steps):
        opt.zero_grad()
        model.loss(X, y).sum().backward()
        opt.step()
    return opt


def assert_refused_and_unchanged(opt, state_dict, match):
    before = copy.deepcopy(opt.state_dict())
    groups = snapshot(opt)
    with pytest.raises(ValueError, match=match) as info:
        opt.load_state_dict(state_dict)
    assert "\n" not in str(info.value)
    assert_unchanged(opt, groups)
    torch.testing.assert_close(opt.state_dict(), before, rtol=0, atol=0)


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
def test_a_state_dict_of_another_number_of_networks_is_refused(cls):
    _, ens, X, y = setup()
    five = TanhNetEnsemble(5, 2, 3, dtype=torch.float64)
    X5 = X.expand(5, *X.shape)
    kwargs = {"lr": 0.01, **({"momentum": 0.9} if cls is EnsembleSGD else {})}
    theirs = stepped(cls(ens.parameters(), **kwargs), ens, X, y).state_dict()
    ours = stepped(cls(five.parameters(), **kwargs), five, X5, y)
    first = "momentum_buffer" if cls is EnsembleSGD else "exp_avg"
    assert_refused_and_unchanged(ours, theirs, rf"^{first} of parameter 0 in the state_dict's param group 0 must have "
                                 r"its parameter's shape \(5, 3, 2\), got \(4, 3, 2\)$")
    theirs = cls(ens.parameters(), lr=LR).state_dict()  # no state yet: the settings alone tell K
    assert_refused_and_unchanged(ours, theirs, r"^lr in the state_dict's param group 0 must be a number or 5 numbers "
                                 r"\(one per network\), got shape \(4,\)$")
    stepped(ours, five, X5, y)  # still steps


def test_a_state_dict_with_bad_settings_or_shapes_is_refused():
    _, ens, X, y = setup()
    opt = stepped(EnsembleAdam(ens.parameters(), lr=0.01), ens, X, y)
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["param_groups"][0]["beta2"] = torch.tensor([0.9, 0.9, 1.5, 0.9], dtype=torch.float64)
    assert_refused_and_unchanged(opt, state_dict, r"^beta2 in the state_dict's param group 0 must be finite and in "
                                 r"\[0.0, 1.0\) for every network, got 1.5 for network 2$")
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["state"][3]["exp_avg_sq"] = torch.zeros(4, 2)
    assert_refused_and_unchanged(opt, state_dict, r"^exp_avg_sq of parameter 3 in the state_dict's param group 0 must "
                                 r"have its parameter's shape \(4, 1\), got \(4, 2\)$")


@pytest.mark.parametrize("theirs,ours,lack", [
    (EnsembleAdam, EnsembleSGD, "momentum"), (EnsembleSGD, EnsembleAdam, "beta1, beta2, eps"),
])
def test_another_optimizers_state_dict_is_refused(theirs, ours, lack):
    _, ens, X, y = setup()
    state_dict = stepped(theirs(ens.parameters(), lr=0.01, **({"momentum": 0.9} if theirs is EnsembleSGD else {})),
                         ens, X, y).state_dict()
    opt = stepped(ours(ens.parameters(), lr=0.01), ens, X, y)
    assert_refused_and_unchanged(opt, state_dict, rf"^this state_dict is {theirs.__name__}'s or another optimizer's, "
                                 rf"not {ours.__name__}'s: its param groups lack {lack}$")
    stepped(opt, ens, X, y)


def test_torch_adams_state_dict_is_refused():
    _, ens, _, _ = setup()
    with pytest.raises(ValueError, match=r"^this state_dict is another optimizer's, not EnsembleAdam's: its param "
                                         r"groups lack beta1, beta2$"):
        EnsembleAdam(ens.parameters()).load_state_dict(torch.optim.Adam(ens.parameters()).state_dict())


@pytest.mark.parametrize("kind", MAKE)
def test_a_round_trip_of_a_partial_state_continues_exactly(kind):
    """Saved while U has no state yet (frozen) and c's has stopped: loaded into a fresh optimizer, bit for bit."""
    make = MAKE[kind][1]
    _, ens, X, y = setup()
    twin = TanhNetEnsemble(K, dtype=torch.float64)
    opt = make(ens.parameters())
    for step in range(20):
        if step in (3, 12):
            twin.load_state_dict(ens.state_dict())
            buffer = io.BytesIO()
            torch.save(opt.state_dict(), buffer)
            buffer.seek(0)
            twin_opt = make(twin.parameters())
            twin_opt.load_state_dict(torch.load(buffer, weights_only=True))
        freeze([ens, twin], step)
        stepped(opt, ens, X, y, steps=1)
        if step >= 3:
            stepped(twin_opt, twin, X, y, steps=1)
    for name in "UbWc":
        assert torch.equal(getattr(twin, name), getattr(ens, name))


def test_a_malformed_state_dict_is_refused_in_one_line():
    _, ens, X, y = setup()
    opt = stepped(EnsembleAdam(ens.parameters(), lr=0.01), ens, X, y)
    good = opt.state_dict()
    cases = [
        ([1, 2], r"^an optimizer's state_dict is a dict, got list$"),
        ({"param_groups": good["param_groups"]}, r"^an optimizer's state_dict holds 'state' and 'param_groups'; this "
                                                 r"one lacks 'state'$"),
        ({"state": good["state"]}, r"lacks 'param_groups'$"),
        ({**good, "state": None}, r"^the state_dict's 'state' must be a dict, got NoneType$"),
        ({**good, "param_groups": None}, r"^the state_dict's 'param_groups' must be a list of dicts"),
        ({**good, "param_groups": [{"lr": 0.1}]}, r"^the state_dict's 'param_groups' must be a list of dicts"),
        ({**good, "state": {k: {kk: None for kk in v} for k, v in good["state"].items()}},
         r"^step of parameter 0 in the state_dict's param group 0 must be a tensor, got NoneType$"),
        ({**good, "state": {**good["state"], 0: [1]}}, r"^the state_dict's state of parameter 0 in param group 0 "
                                                       r"must be a dict, got list$"),
    ]
    for state_dict, message in cases:
        assert_refused_and_unchanged(opt, copy.deepcopy(state_dict), message)
    stepped(opt, ens, X, y)


# ---- settings written into a param group after construction; options and state it cannot honour; schedulers ----

@pytest.mark.parametrize("kind,name,values", [
    ("sgd", "lr", LR), ("sgd", "momentum", MOMENTUM), ("sgd", "weight_decay", DECAY),
    ("adam", "lr", ADAM_LR), ("adam", "beta1", BETAS1), ("adam", "beta2", BETAS2), ("adam", "eps", EPS),
    ("adam", "weight_decay", DECAY),
])
@pytest.mark.parametrize("given", ["list", "tuple", "tensor"])
def test_a_setting_written_into_a_group_counts_per_network_as_in_the_constructor(kind, name, values, given):
    """K numbers written into param_groups[0] after some steps: network k follows torch.optim with values[k] written
    into its own group (per network, not per parameter tensor U, b, W, c); one number written works as before."""
    make_torch, make_ensemble = MAKE[kind]
    nets, ens, X, y = setup()
    opts = [make_torch(n, k) for k, n in enumerate(nets)]
    opt = make_ensemble(ens.parameters())
    train(nets, opts, ens, opt, X, y, steps=3)
    for k, o in enumerate(opts):
        if name.startswith("beta"):
            betas = list(o.param_groups[0]["betas"])
            betas[int(name[-1]) - 1] = values[k]
            o.param_groups[0]["betas"] = tuple(betas)
        else:
            o.param_groups[0][name] = values[k]
    opt.param_groups[0][name] = {"list": list, "tuple": tuple,
                                 "tensor": lambda v: torch.tensor(v, dtype=torch.float64)}[given](values)
    train(nets, opts, ens, opt, X, y, steps=10)
    assert_same_networks(nets, ens, tol=0.0 if kind == "sgd" else 1e-12)  # MAKE's Adam has K betas: a tensor's pow
    assert isinstance(opt.param_groups[0][name], torch.Tensor) and opt.param_groups[0][name].shape == (K,)
    opt.param_groups[0][name] = 0.5
    stepped(opt, ens, X, y)
    assert opt.param_groups[0][name] == 0.5 and type(opt.param_groups[0][name]) is float


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
@pytest.mark.parametrize("value,error,match", [
    ([0.1, 0.2], ValueError, r"^{} in param group 0 must be a number or 4 numbers \(one per network\), got shape "
                             r"\(2,\)$"),
    ([0.1, "a", 0.1, 0.1], TypeError, r"^{} in param group 0 must be a number or 4 numbers"),
    (-1.0, ValueError, r"^{} in param group 0 must be finite and .* got -1.0$"),
    ([0.1, float("nan"), 0.1, 0.1], ValueError, r"^{} in param group 0 must be finite .* got nan for network 1$"),
    ("fast", TypeError, r"^{} in param group 0 must be a number or 4 numbers \(one per network\), got str$"),
    (True, TypeError, r"^{} in param group 0 must be a number or 4 numbers"),
])
def test_a_bad_setting_written_into_a_group_is_refused_at_the_next_step(cls, value, error, match):
    _, ens, X, y = setup()
    opt = stepped(cls(ens.parameters(), lr=0.01), ens, X, y)
    for name in cls.SETTINGS:
        U = ens.U.detach().clone()
        good = opt.param_groups[0][name]
        opt.param_groups[0][name] = value
        with pytest.raises(error, match=match.format(name)) as info:
            opt.step()
        assert "\n" not in str(info.value)
        assert torch.equal(ens.U, U)  # nothing moved
        opt.param_groups[0][name] = good
        opt.step()


@pytest.mark.parametrize("kind", MAKE)
def test_an_option_written_into_a_group_that_the_optimizer_cannot_honour_is_refused(kind):
    _, ens, X, y = setup()
    opt = stepped(MAKE[kind][1](ens.parameters()), ens, X, y)
    for key, honoured in opt.RUNS.items():
        opt.param_groups[0][key] = not honoured if isinstance(honoured, bool) else 0.5
        with pytest.raises(ValueError, match=rf"^{type(opt).__name__} cannot honour {key}=(True|0.5) in param group "
                                             r"0: it runs only "):
            opt.step()
        opt.param_groups[0][key] = honoured  # as torch.optim's own groups hold it: accepted
        opt.step()
        with pytest.raises(ValueError, match=rf"cannot honour {key}="):
            opt.add_param_group({"params": [leaf(4, 3)], key: not honoured if isinstance(honoured, bool) else 0.5})


@pytest.mark.parametrize("options", [dict(nesterov=True), dict(dampening=0.1), dict(maximize=True)],
                         ids=["nesterov", "dampening", "maximize"])
def test_a_torch_sgd_state_dict_that_sgd_cannot_honour_is_refused(options):
    """torch.optim.SGD(nesterov=True) and the like: refused, not run as plain momentum; the plain one loads."""
    _, ens, X, y = setup()
    opt = stepped(EnsembleSGD(ens.parameters(), lr=0.1), ens, X, y)
    theirs = torch.optim.SGD(ens.parameters(), lr=0.1, momentum=0.9, **options)
    stepped(theirs, ens, X, y)
    (key, value), = options.items()
    assert_refused_and_unchanged(opt, copy.deepcopy(theirs.state_dict()),
                                 rf"^EnsembleSGD cannot honour {key}={value} in the state_dict's param group 0: it "
                                 r"runs only dampening=0, nesterov=False, maximize=False, differentiable=False$")
    plain = torch.optim.SGD(ens.parameters(), lr=0.1, momentum=0.9)
    stepped(plain, ens, X, y)
    opt.load_state_dict(copy.deepcopy(plain.state_dict()))
    stepped(opt, ens, X, y)


@pytest.mark.parametrize("drop", [["step"], ["exp_avg"], ["exp_avg_sq"], ["step", "exp_avg_sq"]])
def test_an_incomplete_adam_state_is_refused_at_load(drop):
    _, ens, X, y = setup()
    opt = stepped(EnsembleAdam(ens.parameters(), lr=0.01), ens, X, y)
    state_dict = copy.deepcopy(opt.state_dict())
    for name in drop:
        del state_dict["state"][2][name]
    assert_refused_and_unchanged(opt, state_dict, rf"^the state_dict's state of parameter 2 in param group 0 lacks "
                                 rf"{', '.join(drop)}: EnsembleAdam keeps step, exp_avg, exp_avg_sq for a parameter "
                                 r"\(none before its first step\)$")
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["state"][2]["exp_avg"] = torch.tensor(0.0)
    assert_refused_and_unchanged(opt, state_dict, r"^exp_avg of parameter 2 in the state_dict's param group 0 must "
                                 r"have its parameter's shape \(4, 1, 3\), got \(\)$")
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["state"][2]["step"] = torch.tensor([2.0, 2.0])
    assert_refused_and_unchanged(opt, state_dict, r"^step of parameter 2 in the state_dict's param group 0 must be one "
                                 r"number \(a 0-d tensor\), got shape \(2,\)$")
    stepped(opt, ens, X, y)


SCHEDULERS = {
    "StepLR": lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.5),
    "LambdaLR": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 / (t + 1)),
    "CosineAnnealingLR": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5),
    "LinearLR": lambda o: torch.optim.lr_scheduler.LinearLR(o),
    "CyclicLR": lambda o: torch.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=2,  # cycles SGD's momentum
                                                            cycle_momentum=not isinstance(o, EnsembleAdam)),
    "OneCycleLR": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.1, total_steps=20, cycle_momentum=False),
}


@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("kind", MAKE)
def test_an_lr_scheduler_is_refused_in_one_line_with_per_network_rates(name, kind):
    """At the scheduler's creation, before torch's "fill_ only supports 0-dimension value tensor"."""
    _, ens, X, y = setup()
    opt = stepped(MAKE[kind][1](ens.parameters()), ens, X, y)
    with pytest.raises(ValueError, match=rf"^{type(opt).__name__} holds 4 learning rates in param group 0 \(one per "
                                         r"network\), but torch's LR schedulers set one number per param group: "):
        SCHEDULERS[name](opt)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_an_lr_scheduler_with_one_rate_follows_torch_and_then_refuses_per_network_rates(name):
    """One learning rate (and per-network momenta): network k follows torch.optim.SGD with the same scheduler. K rates
    written into the group later are refused at the next step, before the scheduler's own error."""
    nets, ens, X, y = setup()
    opts = [torch.optim.SGD(n.parameters(), lr=0.05, momentum=MOMENTUM[k]) for k, n in enumerate(nets)]
    opt = EnsembleSGD(ens.parameters(), lr=0.05, momentum=MOMENTUM)
    schedulers = [SCHEDULERS[name](o) for o in opts + [opt]]
    for _ in range(10):
        train(nets, opts, ens, opt, X, y, steps=1)
        for s in schedulers:
            s.step()
    assert_same_networks(nets, ens)
    opt.param_groups[0]["lr"] = LR
    with pytest.raises(ValueError, match=r"^EnsembleSGD holds 4 learning rates in param group 0 \(one per network\)"):
        opt.step()


@pytest.mark.parametrize("name", ["CyclicLR", "OneCycleLR"])
def test_cycling_momentum_is_refused_by_torch_for_ensemble_adam(name):
    """torch cycles Adam's β1 by writing group["betas"], which EnsembleAdam (beta1, beta2, per network) would not
    read: the refusal stands (torch's message); with cycle_momentum=False the learning rate cycles."""
    _, ens, X, y = setup()
    opt = EnsembleAdam(ens.parameters(), lr=0.01)
    make = getattr(torch.optim.lr_scheduler, name)
    with pytest.raises(ValueError, match=r"^optimizer must support momentum or beta1 with `cycle_momentum` option"):
        make(opt, max_lr=0.1, **({"base_lr": 0.01} if name == "CyclicLR" else {"total_steps": 10}))
    assert "betas" not in opt.defaults and "betas" not in opt.param_groups[0]


# ---- settings changed in place, given as NumPy numbers, renamed or missing; what a re-check costs ----

@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
def test_a_setting_changed_in_place_is_refused_at_the_next_step(cls):
    """A per-network setting is a tensor (K,): an in-place edit of it is checked as a newly written one."""
    _, ens, X, y = setup()
    opt = stepped(cls(ens.parameters(), lr=0.01), ens, X, y)
    edits = [(lambda t: t.__setitem__(1, -5.0), r"got -5.0 for network 1$"),
             (lambda t: t.fill_(float("nan")), r"got nan for network 0$"),
             (lambda t: t.detach().mul_(-1), r"got -0.1 for network 0$"),
             # a new tensor in the old one's place, which brings a version counter of its own
             (lambda t: torch.utils.swap_tensors(t, torch.full((4,), -1.0, dtype=torch.float64)),
              r"got -1.0 for network 0$"),
             (lambda t: setattr(t, "data", torch.full((4,), -2.0, dtype=torch.float64)), r"got -2.0 for network 0$")]
    for name in cls.SETTINGS:
        opt.param_groups[0][name] = [0.1, 0.2, 0.3, 0.4]
        opt.step()
        for edit, match in edits:
            U = ens.U.detach().clone()
            edit(opt.param_groups[0][name])
            with pytest.raises(ValueError, match=rf"^{name} in param group 0 must be finite and .* {match}") as info:
                opt.step()
            assert "\n" not in str(info.value)
            assert torch.equal(ens.U, U)  # nothing moved
            opt.param_groups[0][name].copy_(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
            opt.step()
        opt.param_groups[0][name] = 0.0 if name in ("momentum", "weight_decay", "beta1") else 0.01


def test_a_param_list_edited_in_place_is_checked_at_the_next_step():
    _, ens, X, y = setup()
    opt = stepped(EnsembleSGD(ens.parameters(), lr=LR), ens, X, y)
    opt.param_groups[0]["params"].append(leaf(5, 3))
    with pytest.raises(ValueError, match=r"^every parameter of a group must have the same first dimension K "
                                         r"\(networks\), got \[4, 5\]$"):
        opt.step()
    opt.param_groups[0]["params"][-1] = leaf(4, 3)
    opt.step()
    assert torch.equal(opt.param_groups[0]["params"][-1], torch.full((4, 3), -1.0, dtype=torch.float64) *
                       torch.tensor(LR, dtype=torch.float64)[:, None])


def one_number_kinds():
    np = pytest.importorskip("numpy")
    from fractions import Fraction
    return [np.float32(0.25), np.float16(0.25), np.int64(1), np.array(0.25), Fraction(1, 4), torch.tensor(0.25)]


@pytest.mark.parametrize("kind", MAKE)
def test_one_number_of_any_real_type_stays_one_number(kind):
    """NumPy numbers, 0-d arrays, Fractions, 0-d tensors: one float for every network (an LR scheduler accepts it),
    given to the constructor or written into a group; a NumPy array (K,) is K numbers."""
    np = pytest.importorskip("numpy")
    _, ens, X, y = setup()
    cls = EnsembleSGD if kind == "sgd" else EnsembleAdam
    for value in one_number_kinds():
        betas = kind == "adam" and float(value) < 1
        opt = cls(ens.parameters(), lr=value, **({"betas": (value, value)} if betas else {}))
        names = ["lr"] + (["beta1", "beta2"] if betas else [])
        assert all(type(opt.param_groups[0][name]) is float and opt.param_groups[0][name] == float(value)
                   for name in names), value
        torch.optim.lr_scheduler.StepLR(opt, 1)
        opt.param_groups[0]["weight_decay"] = value
        stepped(opt, ens, X, y, steps=1)
        assert type(opt.param_groups[0]["weight_decay"]) is float
    opt = cls(ens.parameters(), lr=np.array(LR, dtype=np.float32))
    assert torch.equal(opt.param_groups[0]["lr"], torch.tensor(LR, dtype=torch.float32).double())


@pytest.mark.parametrize("where", ["step", "add_param_group", "load_state_dict"])
@pytest.mark.parametrize("cls,key,value,match", [
    (EnsembleAdam, "betas", (0.0, 0.5),
     r"^EnsembleAdam does not read betas{} \(got \(0.0, 0.5\)\): set beta1 and beta2 \(each a number or K numbers; "
     r"torch.optim.Adam's betas pair\) instead$"),
    (EnsembleAdam, "differentiable", True, r"^EnsembleAdam cannot honour differentiable=True{}: it runs only "),
    (EnsembleAdam, "capturable", True, r"^EnsembleAdam cannot honour capturable=True{}: it runs only "),
    (EnsembleSGD, "differentiable", True, r"^EnsembleSGD cannot honour differentiable=True{}: it runs only "),
], ids=["adam-betas", "adam-differentiable", "adam-capturable", "sgd-differentiable"])
def test_a_torch_optim_key_these_would_not_honour_is_refused(where, cls, key, value, match):
    """torch.optim.Adam's betas pair (EnsembleAdam reads beta1, beta2), differentiable (the step runs without
    autograd), capturable (the bias corrections are computed on the host): refused, not ignored."""
    _, ens, X, y = setup()
    opt = stepped(cls(ens.parameters(), lr=0.01), ens, X, y)
    U = ens.U.detach().clone()
    if where == "step":
        opt.param_groups[0][key] = value
        with pytest.raises(ValueError, match=match.format(" in param group 0")):
            opt.step()
        assert torch.equal(ens.U, U)
        del opt.param_groups[0][key]
        opt.step()
    elif where == "add_param_group":
        with pytest.raises(ValueError, match=match.format("")):
            opt.add_param_group({"params": [leaf(4, 3)], key: value})
    else:
        state_dict = copy.deepcopy(opt.state_dict())
        state_dict["param_groups"][0][key] = value
        assert_refused_and_unchanged(opt, state_dict, match.format(" in the state_dict's param group 0"))


@pytest.mark.parametrize("kind", MAKE)
def test_foreach_and_fused_flags_change_no_number(kind):
    _, ens, X, y = setup()
    twin = TanhNetEnsemble(K, dtype=torch.float64)
    twin.load_state_dict(ens.state_dict())
    opt, twin_opt = MAKE[kind][1](ens.parameters()), MAKE[kind][1](twin.parameters())
    twin_opt.param_groups[0].update(foreach=True, fused=True)
    stepped(opt, ens, X, y, steps=3)
    stepped(twin_opt, twin, X, y, steps=3)
    for name in "UbWc":
        assert torch.equal(getattr(twin, name), getattr(ens, name))


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
def test_a_setting_deleted_from_a_group_is_refused_in_one_line(cls):
    _, ens, X, y = setup()
    opt = stepped(cls(ens.parameters(), lr=0.01), ens, X, y)
    for name in cls.SETTINGS:
        good = opt.param_groups[0].pop(name)
        with pytest.raises(ValueError, match=rf"^{name} missing in param group 0: {cls.__name__} needs params, "
                                             rf"{', '.join(cls.SETTINGS)} in every param group \(each setting a number "
                                             r"or K numbers\)$"):
            opt.step()
        opt.param_groups[0][name] = good
        opt.step()


@pytest.mark.parametrize("step", [-1.0, -0.5, float("inf"), float("nan")])
def test_an_adam_state_whose_step_is_negative_or_not_finite_is_refused_at_load(step):
    _, ens, X, y = setup()
    opt = stepped(EnsembleAdam(ens.parameters(), lr=0.01), ens, X, y)
    state_dict = copy.deepcopy(opt.state_dict())
    state_dict["state"][1]["step"] = torch.tensor(step)
    assert_refused_and_unchanged(opt, state_dict, rf"^step of parameter 1 in the state_dict's param group 0 must be a "
                                 rf"finite number ≥ 0 \(the steps taken\), got {step}$")
    stepped(opt, ens, X, y)


def test_a_re_check_checks_only_what_changed(monkeypatch):
    """K rates written every step (a per-network schedule) re-check the learning rate alone, with tensor ops."""
    from torch_tanhnet.ensemble import optim
    _, ens, X, y = setup()
    opt = stepped(EnsembleAdam(ens.parameters(), lr=LR, betas=(BETAS1, BETAS2), eps=EPS, weight_decay=DECAY), ens, X, y)
    checked = []
    setting = optim._setting
    monkeypatch.setattr(optim, "_setting", lambda name, *a, **k: checked.append(name) or setting(name, *a, **k))
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: pytest.fail("a setting was read as a list"))
    opt.param_groups[0]["lr"] = torch.tensor(LR, dtype=torch.float64) / 2
    opt.step()
    opt.param_groups[0]["eps"][0] = 1e-7
    opt.step()
    opt.step()
    assert checked == ["lr in param group 0", "eps in param group 0"]


def test_a_schedulers_wrapper_removed_lets_k_rates_run():
    """Once a scheduler has wrapped step, K rates stay refused, even after it is deleted; deleting the wrapper
    (del opt.step) lifts that, and a new scheduler is refused again when it is created."""
    _, ens, X, y = setup()
    opt = EnsembleSGD(ens.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1)
    del scheduler
    opt.param_groups[0]["lr"] = LR
    with pytest.raises(ValueError, match=r"^EnsembleSGD holds 4 learning rates in param group 0"):
        opt.step()
    del opt.step
    stepped(opt, ens, X, y)
    with pytest.raises(ValueError, match=r"^EnsembleSGD holds 4 learning rates in param group 0"):
        torch.optim.lr_scheduler.StepLR(opt, 1)


@pytest.mark.parametrize("value, match", [
    (10**400, r"^lr must be finite, got a number too large for a float \(1000.*\)$"),
    (__import__("fractions").Fraction(10**400), r"^lr must be finite, got a number too large for a float"),
    ([0.1, 10**400, 0.1, 0.1], r"^lr must be finite for every network, got a number too large for a float$"),
    (__import__("numpy").ones((1000, 1000)), r"^lr must be a number or 4 numbers \(one per network\), got a NumPy "
                                              r"array of shape \(1000, 1000\)$"),
    (["x"] * 100_000, r"^lr must be a number or 4 numbers \(one per network\), got \['x', 'x', .*\.\.\.\]$"),
])
def test_settings_too_large_or_of_the_wrong_kind_get_one_short_line(value, match):
    """Not Python's OverflowError naming no setting, nor a message holding a whole array (5 MB for 1000 × 1000);
    given to the constructor or written into a group later."""
    _, ens, X, y = setup()
    with pytest.raises((ValueError, TypeError), match=match) as info:
        EnsembleSGD(ens.parameters(), lr=value)
    assert len(str(info.value)) < 200
    opt = stepped(EnsembleSGD(ens.parameters(), lr=0.1), ens, X, y)
    opt.param_groups[0]["lr"] = value
    with pytest.raises((ValueError, TypeError), match=match.replace("^lr", "^lr in param group 0")) as info:
        opt.step()
    assert len(str(info.value)) < 200


# momentum set to or from 0 mid-training, network by network: torch.optim.SGD keeps no buffer while μ = 0 (or leaves
# the one it had as it was) and starts one (b = d) when μ becomes non-zero; EnsembleSGD rewrote every network's
# buffer as 0·b + d while another network's μ was non-zero, 0.01-0.04 off after 6 steps

SCHEDULES = [  # each network's momentum at each of 12 steps (steps 7 and 8: one number for all, below)
    [0.0] * 3 + [0.5] * 9,
    [0.9] * 3 + [0.0] * 3 + [0.9] * 6,
    [0.0] * 3 + [0.9, 0.0] * 4 + [0.9],
    [0.9] * 4 + [0.0] * 8,
]


@pytest.mark.parametrize("given", ["tensor", "list"])
@pytest.mark.parametrize("round_trip", [False, True], ids=["", "state_dict-round-trip"])
def test_momentum_changed_to_or_from_zero_follows_torch_sgd_per_network(given, round_trip):
    nets, ens, X, y = setup()
    opts = [torch.optim.SGD(n.parameters(), lr=LR[k], momentum=SCHEDULES[k][0]) for k, n in enumerate(nets)]
    opt = EnsembleSGD(ens.parameters(), lr=LR, momentum=[s[0] for s in SCHEDULES])
    for step in range(12):
        mu = [s[step] for s in SCHEDULES]
        if step in (7, 8):  # one number for all networks: 0 (every buffer left as it was), then 0.3
            mu = [0.0] * K if step == 7 else [0.3] * K
            opt.param_groups[0]["momentum"] = mu[0]
        else:
            opt.param_groups[0]["momentum"] = torch.tensor(mu, dtype=torch.float64) if given == "tensor" else mu
        for o, m in zip(opts, mu):
            o.param_groups[0]["momentum"] = m
        if round_trip and step == 5:  # mid-way, networks 0 and 2 without a buffer: through torch.save and back
            buffer = io.BytesIO()
            torch.save(opt.state_dict(), buffer)
            opt = EnsembleSGD(ens.parameters(), lr=LR, momentum=mu)
            opt.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
        train(nets, opts, ens, opt, X, y, steps=1)
        assert_same_networks(nets, ens, tol=1e-12)


def test_momentum_flags_in_a_state_dict_of_another_shape_are_refused():
    _, ens, X, y = setup()
    opt = stepped(EnsembleSGD(ens.parameters(), lr=0.1, momentum=[0.0, 0.9, 0.0, 0.9]), ens, X, y)
    state = opt.state_dict()
    assert state["state"][0]["momentum_networks"].tolist() == [False, True, False, True]
    state["state"][0]["momentum_networks"] = torch.ones(3, dtype=torch.bool)
    assert_refused_and_unchanged(opt, state, r"^momentum_networks of parameter 0 in the state_dict's param group 0 "
                                             r"must have shape \(4,\) \(one flag a network\), got \(3,\)$")


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
def test_a_setting_refused_in_a_later_group_moves_no_group(cls):
    """step() checked and stepped group by group: a bad lr in group 1 left group 0 stepped, and the step() after the
    fix stepped it a second time on the same gradient."""
    _, ens, X, y = setup()
    twin = TanhNetEnsemble(K, dtype=torch.float64)
    twin.load_state_dict(ens.state_dict())
    opt, twin_opt = ([cls([{"params": [m.U, m.b]}, {"params": [m.W, m.c]}], lr=0.1) for m in (ens, twin)])
    for model in (ens, twin):
        model.loss(X, y).sum().backward()
    before = {name: getattr(ens, name).detach().clone() for name in "UbWc"}
    opt.param_groups[1]["lr"] = [0.1, -1.0, 0.1, 0.1]
    with pytest.raises(ValueError, match=r"^lr in param group 1 must be finite and ≥ 0.0 for every network, got "
                                         r"-1.0 for network 1$"):
        opt.step()
    assert all(torch.equal(getattr(ens, name), before[name]) for name in "UbWc") and not opt.state
    opt.param_groups[1]["lr"] = 0.1
    opt.step()
    twin_opt.step()
    for name in "UbWc":
        assert torch.equal(getattr(ens, name), getattr(twin, name))


TORCH_OPTIONS = {EnsembleSGD: dict(foreach=True, fused=False, nesterov=False, dampening=0, maximize=False,
                                   differentiable=False),
                 EnsembleAdam: dict(foreach=None, fused=None, amsgrad=False, maximize=False, capturable=False,
                                    differentiable=False, decoupled_weight_decay=False)}


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
def test_torch_optims_keyword_arguments_are_taken_at_the_values_these_run(cls):
    # torch.optim.SGD(p, lr, nesterov=False) ported to EnsembleSGD was Python's TypeError (groups took them)
    _, ens, X, y = setup()
    twin = TanhNetEnsemble(K, dtype=torch.float64)
    twin.load_state_dict(ens.state_dict())
    stepped(cls(ens.parameters(), lr=0.01), ens, X, y, steps=3)
    stepped(cls(twin.parameters(), lr=0.01, **TORCH_OPTIONS[cls]), twin, X, y, steps=3)
    for name in "UbWc":
        assert torch.equal(getattr(twin, name), getattr(ens, name))
    for key, value in TORCH_OPTIONS[cls].items():
        if key in ("foreach", "fused"):
            continue
        other = (not value) if isinstance(value, bool) else 0.5
        with pytest.raises(ValueError, match=rf"^{cls.__name__} cannot honour {key}={other!r}: it runs only "):
            cls(ens.parameters(), lr=0.01, **{key: other})
    with pytest.raises(TypeError, match=rf"^{cls.__name__}.__init__\(\) got an unexpected keyword argument 'wings'$"):
        cls(ens.parameters(), lr=0.01, wings=1)


@pytest.mark.parametrize("betas", [[(0.9, 0.999), (0.8, 0.99)], ((0.9, 0.8), (0.999, 0.99)),
                                   ([0.9, 0.999], [0.8, 0.99])])
def test_betas_that_read_two_ways_for_two_networks_are_refused(betas):
    # [(β1, β2) of network 0, (β1, β2) of network 1] was read as (β1s, β2s): network 0 got β2 = 0.8, no word said
    ens = TanhNetEnsemble(2)
    with pytest.raises(ValueError, match=r"for 2 networks reads two ways, \(β1 of each, β2 of each\) or a \(β1, β2\) "
                                         r"pair for each network: give the β1s and the β2s as tensors"):
        EnsembleAdam(ens.parameters(), betas=betas)
    with pytest.raises(ValueError, match=r"reads two ways"):  # a param group of 2 networks beside one of 3
        EnsembleAdam([{"params": TanhNetEnsemble(3).parameters()}, {"params": ens.parameters()}], betas=betas)
    with pytest.raises(ValueError, match=r"reads two ways"):  # named parameters: (name, tensor) pairs
        EnsembleAdam(ens.named_parameters(), betas=betas)
    opt = EnsembleAdam(ens.parameters(), betas=(torch.tensor([0.9, 0.8], dtype=torch.float64),
                                                torch.tensor([0.999, 0.99], dtype=torch.float64)))
    assert opt.param_groups[0]["beta1"].tolist() == [0.9, 0.8]
    assert opt.param_groups[0]["beta2"].tolist() == pytest.approx([0.999, 0.99])
    same = EnsembleAdam(ens.parameters(), betas=[(0.9, 0.8), (0.8, 0.99)])  # both readings alike: β1 (0.9, 0.8)
    assert same.param_groups[0]["beta1"].tolist() == [0.9, 0.8]
    three = EnsembleAdam(TanhNetEnsemble(3).parameters(), betas=[(0.9, 0.8, 0.7), (0.999, 0.99, 0.9)])
    assert three.param_groups[0]["beta1"].tolist() == [0.9, 0.8, 0.7]
    with pytest.raises(ValueError, match=r"^betas must be a pair \(β1, β2\), each a number or K numbers \(β1 of each "):
        EnsembleAdam(TanhNetEnsemble(3).parameters(), betas=[(0.9, 0.999)] * 3)


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
@pytest.mark.parametrize("move", ["double", "float"])
def test_a_model_cast_after_the_first_step_is_refused_in_one_line_and_nothing_moves(cls, move):
    # Adam raised torch's "expected dtype float for 'end' but got dtype double" from _foreach_lerp_ with its step
    # count moved on; SGD kept a float32 momentum buffer for float64 weights without a word
    ens = TanhNetEnsemble(K, dtype=torch.float64 if move == "float" else torch.float32)
    X, y = make_data(20, 2, dtype=ens.U.dtype)
    opt = stepped(cls(ens.parameters(), lr=0.01, **({"momentum": 0.9} if cls is EnsembleSGD else {})), ens, X, y)
    getattr(ens, move)()
    X, y = X.to(ens.U.dtype), y.to(ens.U.dtype)
    opt.zero_grad()
    ens.loss(X, y).sum().backward()
    before = {name: getattr(ens, name).detach().clone() for name in "UbWc"}
    state = copy.deepcopy(opt.state_dict()["state"])
    with pytest.raises(ValueError) as e:
        opt.step()
    assert "\n" not in str(e.value) and f"but the parameter is {move.replace('double', 'float64')}" in str(e.value)
    assert "param group 0 is float" in str(e.value)
    assert all(torch.equal(getattr(ens, name), before[name]) for name in "UbWc")
    after = opt.state_dict()["state"]
    assert all(torch.equal(a, b) for k in state for a, b in zip(state[k].values(), after[k].values()))
    again = cls(ens.parameters(), lr=0.01, **({"momentum": 0.9} if cls is EnsembleSGD else {}))
    again.load_state_dict(opt.state_dict())  # as the line says: torch's load casts the state
    again.step()
    assert not torch.equal(ens.U, before["U"])


def test_fused_and_foreach_are_checked_and_kept_out_of_the_groups():
    # kept in a group, fused=True made torch's load_state_dict move Adam's step to float32 on the parameter's device
    _, ens, X, y = setup()
    opt = stepped(EnsembleAdam(ens.parameters(), lr=0.01, fused=True, foreach=False), ens, X, y)
    assert "fused" not in opt.param_groups[0] and "foreach" not in opt.param_groups[0]
    again = EnsembleAdam(ens.parameters(), lr=0.01, fused=True)
    again.load_state_dict(opt.state_dict())
    assert again.state[ens.U]["step"].dtype == torch.float64
    for key, value in (("fused", "banana"), ("foreach", [1])):
        with pytest.raises(ValueError, match=re.escape(f"{key} must be True, False or None, got {value!r}")):
            EnsembleSGD(ens.parameters(), lr=0.01, **{key: value})


def test_params_given_as_a_tensor_or_generators_in_groups_are_read_as_torch_reads_them():
    # EnsembleAdam listed its params first: a tensor (K, H, D) became K parameters, and a group's generator was used
    # up counting its networks
    ens = TanhNetEnsemble(3)
    for cls in (EnsembleSGD, EnsembleAdam):
        with pytest.raises(TypeError, match="params argument given to the optimizer should be an iterable"):
            cls(ens.U, lr=0.1)
    opt = EnsembleAdam([{"params": ens.parameters(), "beta1": [0.9, 0.8, 0.7], "beta2": [0.99, 0.98, 0.97]}],
                       betas=((0.9, 0.8), (0.99, 0.98)))  # two-way betas, but no group of 2 networks
    assert len(opt.param_groups[0]["params"]) == 4


@pytest.mark.parametrize("cls", [EnsembleSGD, EnsembleAdam])
def test_a_model_moved_to_another_device_after_the_first_step_is_refused(cls, monkeypatch):
    # the device half of the check: a state tensor whose device is not its parameter's (a CUDA-less stand-in: the
    # state's reported device index differs)
    _, ens, X, y = setup()
    opt = stepped(cls(ens.parameters(), lr=0.01, **({"momentum": 0.9} if cls is EnsembleSGD else {})), ens, X, y)
    state = next(iter(opt.state[ens.U].values() if cls is EnsembleSGD else [opt.state[ens.U]["exp_avg"]]))
    moved = torch.empty(0, device="meta").new_empty(state.shape, dtype=state.dtype)
    key = "momentum_buffer" if cls is EnsembleSGD else "exp_avg"
    opt.state[ens.U][key] = moved
    U = ens.U.detach().clone()
    with pytest.raises(ValueError, match=rf"^{key} of parameter 0 in param group 0 is float64 on meta, but the "
                                         r"parameter is float64 on cpu \(cast or moved"):
        opt.step()
    assert torch.equal(ens.U, U)


@pytest.mark.parametrize("where", ["group", "state_dict"])
def test_fused_in_a_group_or_a_saved_state_dict_is_checked_and_dropped(where):
    # the constructor's path was fixed, a group's and a loaded state_dict's were not: Adam's step became float32
    _, ens, X, y = setup()
    if where == "group":
        opt = stepped(EnsembleAdam([{"params": list(ens.parameters()), "fused": True}], lr=0.01), ens, X, y)
        assert "fused" not in opt.param_groups[0]
        opt.param_groups[0]["fused"] = True  # written after a step: dropped at the next
        stepped(opt, ens, X, y, steps=1)
        saved = opt.state_dict()
        assert "fused" not in opt.param_groups[0] and "fused" not in saved["param_groups"][0]
    else:
        saved = copy.deepcopy(stepped(EnsembleAdam(ens.parameters(), lr=0.01), ens, X, y).state_dict())
        saved["param_groups"][0]["fused"] = True  # as a checkpoint written before the fix holds it
    again = EnsembleAdam(ens.parameters(), lr=0.01)
    again.load_state_dict(saved)
    assert again.state[ens.U]["step"].dtype == torch.float64 and "fused" not in again.param_groups[0]
    with pytest.raises(ValueError, match=r"^fused must be True, False or None, got 'yes'$"):
        EnsembleAdam([{"params": list(ens.parameters()), "fused": "yes"}], lr=0.01)
    bad = copy.deepcopy(saved)
    bad["param_groups"][0]["foreach"] = "yes"
    with pytest.raises(ValueError, match=r"^foreach must be True, False or None in the state_dict's param group 0"):
        again.load_state_dict(bad)


@pytest.mark.parametrize("make", [
    lambda p: EnsembleSGD(p, lr=1e39), lambda p: EnsembleSGD(p, lr=0.1, momentum=0.9, weight_decay=1e39),
    lambda p: EnsembleAdam(p, lr=1e39), lambda p: EnsembleAdam(p, lr=0.1, weight_decay=1e39),
], ids=["sgd lr", "sgd decay", "adam lr", "adam decay"])
def test_a_setting_past_float32_diverges_the_networks_as_torchs_fused_update_does(make):
    """sweep.py --lr 1e39 (one number, float32) ended in a traceback: torch's foreach ops refuse an alpha past the
    tensors' dtype ("value cannot be converted to type float without overflow"), where train.py's fused update makes
    it infinite and reports the divergence."""
    torch.manual_seed(0)
    ens = TanhNetEnsemble(3)
    X, y = make_data(10, 2, dtype=torch.float32)
    opt = make(ens.parameters())
    for _ in range(2):
        opt.zero_grad()
        ens.loss(X, y.round()).sum().backward()
        opt.step()
    assert not torch.isfinite(ens.U).all()
    net = TanhNet()
    single = torch.optim.SGD(net.parameters(), lr=1e39, fused=True)  # train.py's optimizer
    net.loss(X, y.round()).backward()
    single.step()
    assert not torch.isfinite(net.U).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_adam_on_half_parameters_takes_a_step_size_past_their_range_as_torch_does(dtype):
    """η/(1 − β1ᵗ) = 1e5 at step 1 (lr 1, β1 0.99999) is past float16's range: torch's addcdiv takes it in float32,
    where a float16 factor made the update infinite (and, before that, torch's "cannot be converted to Half")."""
    torch.manual_seed(0)
    p = torch.randn(2, 3, dtype=dtype).requires_grad_()
    alone = p[0].detach().clone().requires_grad_()
    ours = EnsembleAdam([p], lr=1.0, betas=(0.99999, 0.999))
    theirs = torch.optim.Adam([alone], lr=1.0, betas=(0.99999, 0.999))
    g = torch.randn(2, 3, dtype=dtype)
    p.grad, alone.grad = g.clone(), g[0].clone()
    ours.step()
    theirs.step()
    assert torch.isfinite(p).all() and torch.equal(p[0].detach(), alone.detach())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_on_half_parameters_one_networks_setting_leaves_the_others_numbers_alone(dtype):
    """K settings were applied in float32 only where one of them was past float16's range: network 1's numbers then
    changed with network 0's rate (review). Now always in float32 for half parameters, as torch's fused updates."""
    torch.manual_seed(0)
    start, grad = torch.randn(2, 200, dtype=dtype), torch.randn(2, 200, dtype=dtype)
    after = []
    for lr in ([0.3, 0.3], [1e5, 0.3]):
        for make in (lambda p: EnsembleSGD([p], lr=lr, momentum=[0.5, 0.9], weight_decay=[0.01, 0.02]),
                     lambda p: EnsembleAdam([p], lr=lr, betas=(torch.tensor([0.9, 0.5]), 0.999))):
            p = start.clone().requires_grad_()
            p.grad = grad.clone()
            make(p).step()
            after.append(p.detach()[1])
    assert torch.equal(after[0], after[2]) and torch.equal(after[1], after[3])


@pytest.mark.parametrize("opt", [EnsembleSGD, EnsembleAdam])
def test_a_sparse_setting_is_read_as_its_numbers_and_a_sparse_gradient_is_one_line(opt):
    """lr as a sparse tensor and a sparse .grad: torch's "Could not run 'aten::aminmax' / 'aten::lerp_.Scalar' with
    arguments from the 'SparseCPU' backend", many lines (hostile campaign)."""
    ensemble = TanhNetEnsemble(4)
    lr = torch.tensor([0.1, 0.0, 0.2, 0.3]).to_sparse()
    assert torch.equal(opt(ensemble.parameters(), lr=lr).param_groups[0]["lr"], lr.to_dense().double())
    optimizer = opt(ensemble.parameters(), lr=0.1)
    for p in ensemble.parameters():
        p.grad = torch.ones_like(p).to_sparse()
    before = [p.detach().clone() for p in ensemble.parameters()]
    with pytest.raises(RuntimeError, match=rf"^{opt.__name__} does not take sparse gradients, and parameter 0 in "
                                           r"param group 0 has one \(torch.sparse_coo\); make it dense"):
        optimizer.step()
    assert all(torch.equal(a, p) for a, p in zip(before, ensemble.parameters()))  # nothing moved


def test_betas_as_a_tensor_of_two_rows_and_a_wrong_one_in_one_line():
    """A (2, K) tensor of betas was refused with its repr over several lines (a re-probe); its rows are β1 and β2."""
    ensemble = TanhNetEnsemble(3)
    group = EnsembleAdam(ensemble.parameters(), betas=torch.tensor([[0.9] * 3, [0.99] * 3], dtype=torch.float64)
                         ).param_groups[0]
    assert torch.equal(group["beta1"], torch.full((3,), 0.9, dtype=torch.float64))
    assert torch.equal(group["beta2"], torch.full((3,), 0.99, dtype=torch.float64))
    for betas, got in ((torch.ones(3, 3), "a tensor of shape (3, 3)"), (torch.tensor(0.9), "a tensor of shape ()"),
                       (list(range(100)), "[0, 1, 2, ")):
        with pytest.raises(ValueError, match=re.escape(f"betas must be a pair (β1, β2), each a number or K numbers "
                                                       f"(β1 of each network, β2 of each), got {got}")) as e:
            EnsembleAdam(ensemble.parameters(), betas=betas)
        assert "\n" not in str(e.value)
