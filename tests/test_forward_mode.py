"""Forward mode: the hand-written jvp against gradcheck, nn.Sequential under torch.func, and dual numbers."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from conftest import loss_with, make_data, make_params
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck
from torch.func import functional_call, hessian, jacfwd, jvp, vmap

from torch_tanhnet import (
    BCEWithLogitsFunction,
    TanhNet,
    TanhNetEnsemble,
    TanhNetFunction,
    bce_with_logits,
    tanhnet,
    tanhnet_loss,
)

SHAPES = [(1, 2, 3), (6, 2, 3), (5, 4, 5), (3, 1, 2)]  # (N, D, H): N = 1 and D, H other than the seed's
SEQ = {"U": "0.weight", "b": "0.bias", "W": "2.weight", "c": "2.bias"}  # TanhNet's names in the Sequential


def leaves(*tensors):
    return tuple(t.detach().clone().requires_grad_(True) for t in tensors)


def directions(tensors, seed=7):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(t.shape, generator=g, dtype=t.dtype) for t in tensors)


def problem(N, D, H, seed=0):
    """A float64 TanhNet, its nn.Sequential twin, data and soft labels."""
    torch.manual_seed(seed)
    model = TanhNet(D, H, dtype=torch.float64)
    with torch.no_grad():
        model.b.normal_()
        model.c.normal_()  # TanhNet starts b, c at 0: nonzero values exercise their terms
    X, y = make_data(N, D, seed=seed + 1)
    return model, model.to_sequential(), X, y


# -- gradcheck of the jvp (float64, every input with a tangent, single and batched tangents) --

@pytest.mark.parametrize("N,D,H", SHAPES)
def test_gradcheck_forward_ad_of_the_network_function(N, D, H):
    X, _ = make_data(N, D)
    inputs = leaves(X, *make_params(D, H))
    assert gradcheck(TanhNetFunction.apply, inputs, check_forward_ad=True, check_batched_forward_grad=True)


@pytest.mark.parametrize("N", [1, 7])
def test_gradcheck_forward_ad_of_the_cost_function(N):
    z = torch.randn(N, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(N)) * 3
    _, y = make_data(N, 2)
    assert gradcheck(BCEWithLogitsFunction.apply, leaves(z, y), check_forward_ad=True,
                     check_batched_forward_grad=True)


@pytest.mark.parametrize("path", ["composed", "tanhnet_loss"])
@pytest.mark.parametrize("N,D,H", [(1, 2, 3), (5, 3, 4)])
def test_gradcheck_forward_ad_of_the_public_paths(path, N, D, H):
    X, y = make_data(N, D)
    fn = (lambda X, U, b, W, c, y: bce_with_logits(tanhnet(X, U, b, W, c), y)) if path == "composed" else tanhnet_loss
    assert gradcheck(fn, leaves(X, *make_params(D, H), y), check_forward_ad=True, check_batched_forward_grad=True)


# -- torch.func: jvp, jacfwd, hessian equal nn.Sequential's (float64, 1e-10) --

def assert_same(mine, theirs):
    for a, b in zip(torch.utils._pytree.tree_leaves(mine), torch.utils._pytree.tree_leaves(theirs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def seq_params(params):
    return {SEQ[k]: v for k, v in params.items()}


def seq_jacobian(jac):
    """A Jacobian/Hessian dict keyed by Sequential names back to TanhNet's (nested for the Hessian)."""
    back = {v: k for k, v in SEQ.items()}
    return {back[k]: seq_jacobian(v) if isinstance(v, dict) else v for k, v in jac.items()}


def check_transforms_match_sequential(N, D, H):
    model, seq, X, y = problem(N, D, H)
    params = {k: v.detach() for k, v in model.named_parameters()}
    tangents = dict(zip(params, directions(params.values())))
    X_dot = directions([X], seed=3)[0]

    def z_mine(p, X):
        return functional_call(model, p, (X,))

    def z_seq(p, X):
        return functional_call(seq, seq_params(p), (X,))

    def loss_mine(p):  # the cost as a user writes it, and TanhNet.loss (the training path)
        return bce_with_logits(z_mine(p, X), y), loss_with(model, p, X, y)

    def loss_seq(p):
        loss = F.binary_cross_entropy_with_logits(z_seq(p, X), y)
        return loss, loss

    assert_same(jvp(z_mine, (params, X), (tangents, X_dot)), jvp(z_seq, (params, X), (tangents, X_dot)))
    assert_same(jvp(loss_mine, (params,), (tangents,)), jvp(loss_seq, (params,), (tangents,)))
    assert_same(jacfwd(z_mine, argnums=(0, 1))(params, X), jacfwd(z_seq, argnums=(0, 1))(params, X))
    mine, mine_loss = hessian(loss_mine)(params)
    theirs, _ = hessian(loss_seq)(params)
    assert_same(mine, theirs)
    assert_same(mine_loss, theirs)


@pytest.mark.parametrize("N,D,H", SHAPES)
def test_jvp_jacfwd_and_hessian_equal_nn_sequential(N, D, H):
    check_transforms_match_sequential(N, D, H)


@settings(max_examples=8)
@given(N=st.integers(1, 6), D=st.integers(1, 4), H=st.integers(1, 5))
def test_jvp_jacfwd_and_hessian_equal_nn_sequential_over_shapes(N, D, H):
    check_transforms_match_sequential(N, D, H)


def test_vmap_of_jvp_equals_jacfwd_and_a_loop():
    model, seq, X, y = problem(5, 2, 3)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p):
        return bce_with_logits(functional_call(model, p, (X,)), y)

    tangents = [dict(zip(params, directions(params.values(), seed=s))) for s in range(4)]
    stacked = {k: torch.stack([t[k] for t in tangents]) for k in params}
    batched = vmap(lambda t: jvp(loss, (params,), (t,))[1])(stacked)  # 4 directional derivatives at once
    for i, t in enumerate(tangents):
        torch.testing.assert_close(batched[i], jvp(loss, (params,), (t,))[1], rtol=1e-12, atol=1e-14)
    # per-sample directional derivatives of z: vmap over the samples of jvp in one direction
    X_dot = directions([X], seed=9)[0]
    per_sample = vmap(lambda x, x_dot: jvp(lambda x: model(x.unsqueeze(0)), (x,), (x_dot,))[1])(X, X_dot)
    want = jvp(lambda X: seq(X), (X,), (X_dot,))[1]
    torch.testing.assert_close(per_sample.reshape(5, 1), want, rtol=1e-12, atol=1e-14)


# -- dual numbers (torch.autograd.forward_ad) through the module, which routes them to the reference --

def dual_tangents(model, X, y, grad_enabled):
    """ż and ε̇ (forward and loss) of TanhNet for tangents of X and of every parameter, as dual numbers."""
    params = dict(model.named_parameters())
    tangents = dict(zip(params, directions(params.values())))
    X_dot = directions([X], seed=3)[0]
    with fwAD.dual_level(), torch.set_grad_enabled(grad_enabled):
        duals = {k: fwAD.make_dual(p.detach(), tangents[k]) for k, p in params.items()}
        Xd = fwAD.make_dual(X, X_dot)
        z = functional_call(model, duals, (Xd,))
        loss = loss_with(model, duals, Xd, y)
        return fwAD.unpack_dual(z).tangent, fwAD.unpack_dual(loss).tangent, tangents, X_dot


@pytest.mark.parametrize("grad_enabled", [True, False])
@pytest.mark.parametrize("N,D,H", [(1, 2, 3), (6, 3, 4)])
def test_dual_numbers_through_the_module_forward_and_loss(N, D, H, grad_enabled):
    model, seq, X, y = problem(N, D, H)
    z_dot, eps_dot, tangents, X_dot = dual_tangents(model, X, y, grad_enabled)
    params = {k: v.detach() for k, v in model.named_parameters()}
    want_z = jvp(lambda p, X: functional_call(seq, seq_params(p), (X,)), (params, X), (tangents, X_dot))[1]
    want_eps = jvp(lambda p, X: F.binary_cross_entropy_with_logits(functional_call(seq, seq_params(p), (X,)), y),
                   (params, X), (tangents, X_dot))[1]
    torch.testing.assert_close(z_dot, want_z, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(eps_dot, want_eps, rtol=1e-10, atol=1e-12)


def test_dual_numbers_reach_the_reference_and_only_inside_a_dual_level():
    model, _, X, y = problem(8, 2, 3)
    assert type(model.loss(X, y).grad_fn).__name__ == "FusedLossFunctionBackward"  # the training path, untouched
    assert type(model(X).grad_fn).__name__ == "FastTanhNetFunctionBackward"
    with fwAD.dual_level():
        Xd = fwAD.make_dual(X, torch.ones_like(X))
        assert type(model.loss(Xd, y).grad_fn).__name__ == "BCEWithLogitsFunctionBackward"
        assert type(model(Xd).grad_fn).__name__ == "TanhNetFunctionBackward"
    assert type(model.loss(X, y).grad_fn).__name__ == "FusedLossFunctionBackward"


def test_the_ensemble_carries_dual_numbers_through_forward_and_loss():
    """TanhNetEnsemble: its training path (the fused ensemble loss) has no jvp either, so dual numbers take the
    ensemble's reference Functions; each network's ż and ε̇ equal its nn.Sequential's."""
    torch.manual_seed(0)
    ens = TanhNetEnsemble(3, 2, 4, dtype=torch.float64)
    X, y = make_data(5, 2)
    params = dict(ens.named_parameters())
    tangents = dict(zip(params, directions(params.values())))
    X_dot = directions([X], seed=3)[0]
    assert type(ens.loss(X, y).grad_fn).__name__ == "EnsembleLossFunctionBackward"
    with fwAD.dual_level():
        duals = {k: fwAD.make_dual(p.detach(), tangents[k]) for k, p in params.items()}
        Xd = fwAD.make_dual(X, X_dot)
        z_dot = fwAD.unpack_dual(functional_call(ens, duals, (Xd,))).tangent  # (K, N, 1)
        loss = loss_with(ens, duals, Xd, y)
        eps_dot = fwAD.unpack_dual(loss).tangent  # (K,)
    assert type(loss.grad_fn).__name__ != "EnsembleLossFunctionBackward"
    for k, net in enumerate(ens.to_modules()):
        p = {n: v.detach() for n, v in net.named_parameters()}
        t = {n: tangents[n][k].view_as(p[n]) for n in p}
        seq = net.to_sequential()
        want_z = jvp(lambda p, X, seq=seq: functional_call(seq, seq_params(p), (X,)), (p, X), (t, X_dot))[1]
        want_eps = jvp(lambda p, X, seq=seq: F.binary_cross_entropy_with_logits(
            functional_call(seq, seq_params(p), (X,)), y), (p, X), (t, X_dot))[1]
        torch.testing.assert_close(z_dot[k], want_z, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(eps_dot[k], want_eps, rtol=1e-10, atol=1e-12)


def test_forward_over_reverse_hessian_vector_product_of_the_training_path():
    """jvp of the gradient that backward() gives: the Hessian-vector product a user gets with dual numbers."""
    model, seq, X, y = problem(6, 2, 3)
    params = {k: v.detach() for k, v in model.named_parameters()}
    v = dict(zip(params, directions(params.values())))

    def grad_mine(p):
        return torch.func.grad(lambda p: bce_with_logits(functional_call(model, p, (X,)), y))(p)

    def grad_seq(p):
        return torch.func.grad(lambda p: F.binary_cross_entropy_with_logits(functional_call(seq, seq_params(p),
                                                                                            (X,)), y))(p)

    assert_same(jvp(grad_mine, (params,), (v,))[1], jvp(grad_seq, (params,), (v,))[1])


# -- the identity tying the two modes: ⟨ȳ, J ẋ⟩ = ⟨Jᵀȳ, ẋ⟩ --

def inner(a, b):
    return sum((x * y).sum() for x, y in zip(a, b) if x is not None and y is not None)


@pytest.mark.parametrize("N,D,H", SHAPES)
def test_tangents_and_adjoints_satisfy_the_duality_identity(N, D, H):
    """For the network (z, H) = f(X, U, b, W, c): ⟨(z̄, H̃), (ż, Ḣ)⟩ = ⟨(X̄, Ū, b̄, W̄, c̄), (Ẋ, U̇, ḃ, Ẇ, ċ)⟩,
    with ż, Ḣ from the hand-written jvp and X̄ … c̄ from the hand-written backward; the same for the cost."""
    X, y = make_data(N, D)
    inputs = (X, *make_params(D, H, requires_grad=False))
    dots = directions(inputs, seed=11)
    z, H_out = TanhNetFunction.forward(*inputs)
    z_bar, H_tilde = directions((z, H_out), seed=12)
    tan = TanhNetFunction.tangent_equations(*dots, inputs[0], inputs[1], inputs[3], H_out)
    adj = TanhNetFunction.backward_equations(z_bar, H_tilde, inputs[0], inputs[1], inputs[3], H_out)
    lhs = inner((z_bar, H_tilde), (tan.z_dot, tan.H_dot))
    rhs = inner((adj.X_bar, adj.U_bar, adj.b_bar, adj.W_bar, adj.c_bar), dots)
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-13)

    z_dot, y_dot = directions((z, y), seed=13)
    eps_bar = torch.tensor(0.7, dtype=torch.float64)
    eps_dot = BCEWithLogitsFunction.tangent_equations(z_dot, y_dot, z, y)
    grads = BCEWithLogitsFunction.backward_equations(eps_bar, z, y)
    torch.testing.assert_close(eps_bar * eps_dot, inner(grads, (z_dot, y_dot)), rtol=1e-12, atol=1e-14)


def test_a_tangent_left_out_counts_as_zero():
    X, _ = make_data(4, 2)
    U, b, W, c = make_params(2, 3, requires_grad=False)
    _, H = TanhNetFunction.forward(X, U, b, W, c)
    b_dot = torch.randn(3, dtype=torch.float64)
    only_b = TanhNetFunction.tangent_equations(None, None, b_dot, None, None, X, U, W, H)
    zeros = [torch.zeros_like(t) for t in (X, U, b, W, c)]
    full = TanhNetFunction.tangent_equations(zeros[0], zeros[1], b_dot, zeros[3], zeros[4], X, U, W, H)
    for a, r in zip(only_b, full):
        assert a.shape == r.shape
        torch.testing.assert_close(a, r, rtol=0, atol=0)
    nothing = TanhNetFunction.tangent_equations(None, None, None, None, None, X, U, W, H)
    assert nothing.z_dot.shape == (4, 1) and not nothing.z_dot.any()


def test_a_tangent_not_passed_reaches_each_jvp_as_none():
    # the costs materialized it: a tensor of zeros, so their "None counts as zero" branches never ran
    import torch.autograd.forward_ad as fwAD

    from torch_tanhnet.cost import BCEWithLogitsFunction
    from torch_tanhnet.ensemble.function import EnsembleBCEFunction

    seen = []
    for cls, shape in ((BCEWithLogitsFunction, (6, 1)), (EnsembleBCEFunction, (2, 6, 1))):
        original = cls.jvp

        def spy(ctx, z_dot, y_dot, _original=original):
            seen.append((z_dot is None, y_dot is None))
            return _original(ctx, z_dot, y_dot)

        z, y = torch.randn(shape, dtype=torch.float64), torch.rand(shape, dtype=torch.float64)
        try:
            cls.jvp = staticmethod(spy)
            with fwAD.dual_level():
                out = cls.apply(fwAD.make_dual(z, torch.ones_like(z)), y)
                assert fwAD.unpack_dual(out).tangent is not None
        finally:
            cls.jvp = original
    assert seen == [(False, True), (False, True)]
