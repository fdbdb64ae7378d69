"""TanhNetEnsemble: initialisation, indexing, and equality with K separate TanhNets on the training path."""

import re

import numpy as np
import pytest
import torch
from conftest import loss_with, make_data

from torch_tanhnet import TanhNet, TanhNetEnsemble, bce_with_logits
from torch_tanhnet.ensemble import ensemble_reference_loss

EXACT = dict(rtol=0, atol=1e-12)


def nets_and_ensemble(K=3, D=2, H=3, device="cpu"):
    torch.manual_seed(0)
    nets = [TanhNet(D, H, dtype=torch.float64, device=device) for _ in range(K)]
    with torch.no_grad():  # non-zero biases, so that every parameter's role is checked
        for n in nets:
            n.b.normal_()
            n.c.normal_()
    return nets, TanhNetEnsemble.from_modules(nets)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("D,H", [(4, 5), (2, 3), (1, 1), (7, 64)])
def test_seeded_networks_are_what_manual_seed_and_TanhNet_give(dtype, D, H):
    """Bit for bit, for every dtype and shape: network k's generator seeded, then TanhNet's draws in its order."""
    ens = TanhNetEnsemble(3, D, H, dtype=dtype, seeds=[7, 0, 123])
    state = torch.get_rng_state()
    for k, seed in enumerate([7, 0, 123]):
        torch.manual_seed(seed)
        ref = TanhNet(D, H, dtype=dtype)
        for name in "UbWc":
            assert torch.equal(getattr(ens[k], name), getattr(ref, name)), (k, name)
    torch.set_rng_state(state)


def test_seeding_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    TanhNetEnsemble(4, seeds=[1, 2, 3, 4])
    assert torch.equal(torch.get_rng_state(), before)


def test_unseeded_networks_are_drawn_in_turn_like_a_list_of_TanhNets():
    torch.manual_seed(3)
    ens = TanhNetEnsemble(4, 2, 3)
    torch.manual_seed(3)
    nets = [TanhNet(2, 3) for _ in range(4)]
    for k, n in enumerate(nets):
        for name in "UbWc":
            assert torch.equal(getattr(ens[k], name), getattr(n, name))


def test_indexing_gives_copies_and_len_counts_networks():
    nets, ens = nets_and_ensemble(K=3)
    assert len(ens) == 3 and len(list(ens.to_modules())) == 3
    net = ens[-1]
    assert isinstance(net, TanhNet)
    with torch.no_grad():
        net.U.add_(1.0)
    assert torch.equal(ens.U[2], nets[2].U)  # the ensemble is unchanged
    with pytest.raises(IndexError, match="network 3 is out of range for an ensemble of 3"):
        ens[3]


@pytest.mark.parametrize("key, chosen", [
    (slice(1, 3), [1, 2]), (slice(None, None, -1), [2, 1, 0]), (slice(-2, None), [1, 2]), ([2, 0], [2, 0]),
    ([1, 1], [1, 1]), (torch.tensor([0, 2]), [0, 2]), (np.where([True, False, True]), [0, 2]),
    (torch.where(torch.tensor([False, True, True])), [1, 2]), (torch.tensor([-1]), [2]), (np.array([1]), [1]),
    (torch.tensor([True, False, True]), [0, 2]), (np.array([False, True, False]), [1]), ([True, True, False], [0, 1]),
])
def test_a_slice_list_or_mask_selects_networks_as_a_new_ensemble_of_copies(key, chosen):
    """ens[0:2] and ens[solved] (a bool mask) were refused: only an int indexed an ensemble."""
    nets, ens = nets_and_ensemble(K=3)
    ens.seeds = [10, 11, 12]
    picked = ens[key]
    assert isinstance(picked, TanhNetEnsemble) and len(picked) == len(chosen) and picked.seeds == [10 + k for k in
                                                                                                     chosen]
    for name in "UbWc":
        assert torch.equal(getattr(picked, name), getattr(ens, name)[chosen])
    with torch.no_grad():
        picked.U.add_(1.0)
    assert torch.equal(ens.U[2], nets[2].U)  # copies: the ensemble is unchanged


@pytest.mark.parametrize("key, error, message", [
    (slice(2, 2), IndexError, "slice 2:2:None selects no network of the 3; an ensemble holds at least one"),
    ([], IndexError, "list [] selects no network of the 3; an ensemble holds at least one"),
    ([0, 3], IndexError, "network 3 is out of range for an ensemble of 3"),
    (torch.tensor([-4]), IndexError, "network -4 is out of range for an ensemble of 3"),
    (torch.tensor([True, False]), IndexError, "a mask selects networks with one bool a network, shape (3,), got "
                                              "shape (2,)"),
    (torch.tensor(True), IndexError, "a mask selects networks with one bool a network, shape (3,), got shape ()"),
    ([0, "1"], TypeError, "an ensemble is indexed by network numbers, got str '1' in a list"),
    ([0, 1.0], TypeError, "an ensemble is indexed by network numbers, got float 1.0 in a list"),
    ((1, 2), IndexError, "an ensemble has one dimension, its networks; got an index of 2 (a tuple): select several "
                         "networks with a list, [1, 2]"),
    (torch.tensor([1, 0, 1], dtype=torch.uint8), TypeError, "an ensemble is indexed by network numbers or a bool "
     "mask; a uint8 tensor reads as either (torch took it as a mask, NumPy as numbers): convert it with .bool() or "
     ".long()"),
    (np.array([1, 0, 1], dtype=np.uint8), TypeError, "an ensemble is indexed by network numbers or a bool mask; a "
     "uint8 tensor reads as either (torch took it as a mask, NumPy as numbers): convert it with .bool() or .long()"),
])
def test_a_selection_that_names_no_network_or_a_wrong_one_is_refused_in_one_line(key, error, message):
    _, ens = nets_and_ensemble(K=3)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        ens[key]


@pytest.mark.parametrize("key", [np.int64(1), np.int32(-2), torch.tensor(1), torch.tensor(-2, dtype=torch.int32)])
def test_indexing_takes_what_stands_for_an_int(key):
    """A NumPy integer or a one-element integer tensor indexes as the int it holds (as check_size takes them)."""
    nets, ens = nets_and_ensemble(K=3)
    assert torch.equal(ens[key].U, nets[int(key)].U)


@pytest.mark.parametrize("key, came", [(True, "bool"), (1.0, "float"), (np.float64(1), "float64"),
                                       (np.array([0.5]), "an array of float64 of shape (1,)"),
                                       ("1", "str"), (None, "NoneType"),
                                       (torch.tensor(1.0), "a torch.float32 tensor of shape ()"),
                                       (torch.tensor([1.0, 2.0]), "a torch.float32 tensor of shape (2,)"),
                                       (torch.ones(2, 2, dtype=torch.long), "a torch.int64 tensor of shape (2, 2)")])
def test_indexing_refuses_what_is_not_a_network_number_in_one_line(key, came):
    _, ens = nets_and_ensemble(K=3)
    with pytest.raises(TypeError, match=f"^an ensemble is indexed by network numbers: an int, a slice, ints or a "
                                        rf"bool mask \(3,\), got {re.escape(came)}$"):
        ens[key]


@pytest.mark.parametrize("shared_X", [True, False])
@pytest.mark.parametrize("shared_y", [True, False])
def test_loss_values_and_gradients_equal_K_separate_TanhNets(device, shared_X, shared_y):
    K, N = 3, 11
    nets, ens = nets_and_ensemble(K, D=3, H=4, device=device)
    Xs = [make_data(N, 3, seed=1 if shared_X else 10 + k)[0].to(device) for k in range(K)]
    ys = [make_data(N, 3, seed=1 if shared_y else 20 + k)[1].to(device) for k in range(K)]
    X = Xs[0] if shared_X else torch.stack(Xs)
    y = ys[0] if shared_y else torch.stack(ys)
    eps = ens.loss(X, y)
    assert eps.shape == (K,) and eps.grad_fn.name() == "EnsembleLossFunctionBackward"
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, device=device)
    (weights * eps).sum().backward()
    z = ens(X)
    for k, net in enumerate(nets):
        torch.testing.assert_close(z[k], net(Xs[k]), **EXACT)
        torch.testing.assert_close(ens.predict_proba(X)[k], net.predict_proba(Xs[k]), **EXACT)
        e = net.loss(Xs[k], ys[k])
        torch.testing.assert_close(eps[k], e, **EXACT)
        (weights[k] * e).backward()
        for name in "UbWc":
            torch.testing.assert_close(getattr(ens, name).grad[k], getattr(net, name).grad.view_as(
                getattr(ens, name)[k]), **EXACT)


@pytest.mark.parametrize("shared_X", [True, False])
def test_data_gradient_sums_over_networks_when_X_is_shared(shared_X):
    _, ens = nets_and_ensemble(K=3)
    X, y = make_data(6, 2)
    X = X if shared_X else torch.stack([X, 2 * X, -X])
    X.requires_grad_(True)
    (ens.loss(X, y) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    mine = X.grad.clone()
    X.grad = None
    (ensemble_reference_loss(X, ens.U, ens.b, ens.W, ens.c, y) * torch.tensor([1.0, 2.0, 3.0],
                                                                               dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(mine, X.grad, **EXACT)


@pytest.mark.parametrize("frozen", ["U", "b", "W", "c", "Wc"])
def test_frozen_parameters_get_no_gradient_and_the_rest_are_exact(frozen):
    _, ens = nets_and_ensemble(K=2)
    X, y = make_data(5, 2)
    for name in frozen:
        getattr(ens, name).requires_grad_(False)
    ens.loss(X, y).sum().backward()
    ref = {n: t.detach().clone().requires_grad_(n not in frozen) for n, t in ens.named_parameters()}
    ensemble_reference_loss(X, *(ref[n] for n in "UbWc"), y).sum().backward()
    for name in "UbWc":
        if name in frozen:
            assert getattr(ens, name).grad is None
        else:
            torch.testing.assert_close(getattr(ens, name).grad, ref[name].grad, **EXACT)


def test_loss_under_no_grad_evaluates_the_same_cost():
    _, ens = nets_and_ensemble()
    X, y = make_data(7, 2)
    with torch.no_grad():
        quiet = ens.loss(X, y)
    assert quiet.grad_fn is None
    torch.testing.assert_close(quiet, ens.loss(X, y).detach(), **EXACT)


@pytest.mark.parametrize("K,D,H,dtype", [(40, 2, 3, torch.float32), (5, 3, 4, torch.float64), (1, 2, 3, torch.float64)])
@pytest.mark.parametrize("shared", [True, False])
def test_loss_under_no_grad_runs_the_fused_pass_and_equals_the_reference(monkeypatch, K, D, H, dtype, shared):
    """Evaluating ε (a test set each epoch) takes the kernel, not the reference's batched products (16x slower)."""
    from torch_tanhnet.kernels import dispatch

    lib = dispatch.c_kernels(dtype)
    if lib is None:
        pytest.skip("the C kernels are unavailable here")
    calls = []
    real = type(lib).ensemble_loss_and_gradients
    monkeypatch.setattr(type(lib), "ensemble_loss_and_gradients", lambda *a, **k: calls.append(1) or real(*a, **k))
    ens = TanhNetEnsemble(K, D, H, dtype=dtype, seeds=list(range(K)))
    X, y = make_data(37, D, dtype=dtype)
    if not shared:
        X, y = X.expand(K, 37, D) + torch.arange(K, dtype=dtype).view(K, 1, 1), y.expand(K, 37, 1).contiguous()
    with torch.no_grad():
        quiet = ens.loss(X, y)
    assert calls == [1] and quiet.grad_fn is None and quiet.shape == (K,)
    ref = ensemble_reference_loss(X.double(), *(p.detach().double() for p in (ens.U, ens.b, ens.W, ens.c)), y.double())
    torch.testing.assert_close(quiet.double(), ref, **(EXACT if dtype == torch.float64 else dict(rtol=2e-6, atol=1e-6)))


@pytest.mark.parametrize("shared", [True, False])
def test_second_derivatives_through_the_fused_loss_are_exact(shared):
    """A gradient penalty and a Hessian-vector product through ens.loss equal the reference composition's."""
    _, ens = nets_and_ensemble()
    X, y = make_data(5, 2)
    if not shared:
        X, y = X.expand(3, 5, 2).clone(), y.expand(3, 5, 1).clone()
    X.requires_grad_(True)
    params = [ens.U, ens.b, ens.W, ens.c]
    weights = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)

    def penalised(loss_fn):
        loss = (weights * loss_fn()).sum()
        grads = torch.autograd.grad(loss, params + [X], create_graph=True)
        penalty = sum(g.pow(2).sum() for g in grads)
        return torch.autograd.grad(loss + penalty, params + [X])

    got = penalised(lambda: ens.loss(X, y))
    want = penalised(lambda: ensemble_reference_loss(X, ens.U, ens.b, ens.W, ens.c, y))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **EXACT)
    v = [torch.randn_like(p) for p in params]  # a Hessian-vector product, reverse over reverse
    hv = lambda fn: torch.autograd.grad(torch.autograd.grad(fn().sum(), params, create_graph=True), params, v)  # noqa
    for g, w in zip(hv(lambda: ens.loss(X, y)),
                    hv(lambda: ensemble_reference_loss(X, ens.U, ens.b, ens.W, ens.c, y))):
        torch.testing.assert_close(g, w, **EXACT)


def test_labels_that_need_a_gradient_run_the_reference():
    _, ens = nets_and_ensemble()
    X, y = make_data(5, 2)
    y.requires_grad_(True)
    eps = ens.loss(X, y)
    assert eps.grad_fn.name() != "EnsembleLossFunctionBackward"
    eps.sum().backward()
    torch.testing.assert_close(y.grad, -torch.stack([ens(X)[k] for k in range(3)]).sum(0) / 5, **EXACT)


def test_torch_func_grad_over_the_loss_runs_the_reference_and_equals_autograd():
    _, ens = nets_and_ensemble()
    X, y = make_data(6, 2)
    params = {n: p.detach() for n, p in ens.named_parameters()}

    def total(p):  # functional_call runs forward(); the loss method is reached through a wrapper module
        return loss_with(ens, p, X, y).sum()

    mine = torch.func.grad(total)(params)
    ens.loss(X, y).sum().backward()
    for n in "UbWc":
        torch.testing.assert_close(mine[n], getattr(ens, n).grad, **EXACT)


def test_compiled_loss_matches_eager():
    _, ens = nets_and_ensemble()
    X, y = make_data(8, 2)
    compiled = torch.compile(lambda X, y: ens.loss(X, y), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(X, y), ens.loss(X, y), **EXACT)
    torch.testing.assert_close(torch.compile(ens, fullgraph=True, backend="aot_eager")(X), ens(X), **EXACT)


def test_bce_of_the_forward_equals_the_loss():
    _, ens = nets_and_ensemble()
    X, y = make_data(8, 2)
    z = ens(X)
    torch.testing.assert_close(torch.stack([bce_with_logits(z[k], y) for k in range(3)]), ens.loss(X, y), **EXACT)


def test_state_dict_round_trip():
    _, ens = nets_and_ensemble()
    other = TanhNetEnsemble(3, dtype=torch.float64)
    other.load_state_dict(ens.state_dict())
    for n in "UbWc":
        assert torch.equal(getattr(other, n), getattr(ens, n))


def _grads(ens):
    return [None if p.grad is None else p.grad.clone() for p in ens.parameters()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shared", [True, False])
def test_loss_and_grad_gives_what_loss_sum_backward_gives(dtype, shared):
    """Bit for bit: the same pass, asked directly. Twice accumulates, as backward does."""
    K, N = 20, 70  # float32: the lane kernel
    g = torch.Generator().manual_seed(3)
    X = torch.randn((N, 2) if shared else (K, N, 2), generator=g).to(dtype)
    y = (torch.rand((N, 1) if shared else (K, N, 1), generator=g) < 0.5).to(dtype)
    ens = TanhNetEnsemble(K, dtype=dtype, seeds=list(range(K)))
    eps = ens.loss(X, y)
    eps.sum().backward()
    want = _grads(ens)
    ens.zero_grad()
    got_eps = ens.loss_and_grad(X, y)
    assert torch.equal(got_eps, eps.detach()) and not got_eps.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(_grads(ens), want))
    ens.loss_and_grad(X, y)
    for a, b in zip(_grads(ens), want):
        torch.testing.assert_close(a, 2 * b, rtol=0, atol=0)


def test_loss_and_grad_leaves_frozen_parameters_alone_and_falls_back_where_x_or_y_need_a_gradient():
    nets, ens = nets_and_ensemble(K=3)
    X, y = make_data(30, 2)
    y = (y > 0.5).double()
    ens.W.requires_grad_(False)
    ens.loss_and_grad(X, y)
    assert ens.W.grad is None and all(p.grad is not None for p in (ens.U, ens.b, ens.c))
    ens.W.requires_grad_(True)
    for needs in ("X", "y"):
        ens.zero_grad()
        Xg, yg = X.clone().requires_grad_(needs == "X"), y.clone().requires_grad_(needs == "y")
        ens.loss_and_grad(Xg, yg)
        got = (Xg if needs == "X" else yg).grad
        ens.zero_grad()
        Xr, yr = X.clone().requires_grad_(needs == "X"), y.clone().requires_grad_(needs == "y")
        ens.loss(Xr, yr).sum().backward()
        torch.testing.assert_close(got, (Xr if needs == "X" else yr).grad, **EXACT)


def test_loss_and_grad_refuses_bad_input_as_loss_does():
    _, ens = nets_and_ensemble(K=3)
    X, _ = make_data(10, 2)
    for bad_y in (torch.zeros(9, 1, dtype=torch.float64), torch.zeros(4, 10, 1, dtype=torch.float64)):
        with pytest.raises(ValueError) as a:
            ens.loss(X, bad_y)
        with pytest.raises(ValueError) as b:
            ens.loss_and_grad(X, bad_y)
        assert str(a.value) == str(b.value) and "\n" not in str(b.value)
